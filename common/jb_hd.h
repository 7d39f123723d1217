// JB_HD marks the pure index/tiling helpers of cuda/common/ as callable from host and
// device code. Under nvcc (__CUDACC__) they are __host__ __device__; under a plain C++
// compiler they are ordinary inline functions, so the CPU tests (cuda/test/, run by
// test/cuda-helpers.test.ts with g++) check the very code the kernels use.
#pragma once

#if defined(__CUDACC__)
#define JB_HD __host__ __device__ __forceinline__
#else
#define JB_HD inline
#endif

namespace jb {
namespace gpu {

JB_HD int min_i(int a, int b) { return a < b ? a : b; }
JB_HD int max_i(int a, int b) { return a > b ? a : b; }
JB_HD int ceil_div(int a, int b) { return (a + b - 1) / b; }

}  // namespace gpu
}  // namespace jb
