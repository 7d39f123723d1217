// Kernel launches and dynamic shared memory, spelled once for both builds of the .cu files:
//   nvcc (build/cuda):             JB_LAUNCH(k, grid, block, smem, stream)(args...)
//                                  == k<<<grid, block, smem, stream>>>(args...)
//   g++ + cuda/emu (build/cuda-emu): the emulator's launch, which checks the configuration
//                                  against the emulated architecture and queues the grid on
//                                  the stream (cuda/emu/include/jbemu/jbemu.h).
// g++ cannot parse <<<...>>>, so every launch in cuda/ goes through JB_LAUNCH. A kernel name
// with template arguments needs parentheses around it only in the emulation build; none
// exists today.
//   JB_DYNAMIC_SHARED(T, name): the block's dynamic shared memory as T* name (16-byte aligned).
#pragma once

#if defined(__CUDACC__)
#include <cuda_runtime.h>
#define JB_LAUNCH(kernel, grid, block, smem, stream) kernel<<<(grid), (block), (smem), (stream)>>>
#define JB_DYNAMIC_SHARED(T, name)                 \
  extern __shared__ __align__(16) unsigned char jb_dynamic_shared_[]; \
  T* name = reinterpret_cast<T*>(jb_dynamic_shared_)
#else
#include <cuda_runtime.h>  // cuda/emu/include/cuda_runtime.h in the emulation build
#if !defined(JB_CUDA_EMULATED)
#error "a .cu file built by a host compiler needs cuda/emu/include first on the include path"
#endif
#define JB_LAUNCH(kernel, grid, block, smem, stream) ::jbemu::launch(kernel, #kernel, (grid), (block), (smem), (stream), __FILE__, __LINE__)
#define JB_DYNAMIC_SHARED(T, name) T* name = ::jbemu::dynamic_shared<T>()
#endif
