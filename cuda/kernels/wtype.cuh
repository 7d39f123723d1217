// Element types of the model's device tensors, and how a kernel reads them as fp32:
//  - weights are stored on the device in the dtype of the file (fp32, fp16 or bf16: the
//    ABI's jb_cuda_dtype), so an fp16 checkpoint costs 2 bytes a weight and an fp32 one keeps
//    its exact values (the CPU engine widens the same bits: csrc/cpu/matmul.h WeightView);
//  - KV caches are fp32 (equal to the CPU engine's caches) or fp16 (half the bytes).
// bf16 is kept as raw 16-bit storage (bf16_t) and widened by a shift: exact, and it needs no
// <cuda_bf16.h> (the emulation build has none).
#pragma once
#include <cuda_fp16.h>
#include <stdint.h>

namespace jb {
namespace cuda {

struct bf16_t {
  uint16_t bits;
};

/** jb_cuda_dtype values (include/jukebox_cuda.h). */
enum WDType : int { kWF32 = 0, kWF16 = 1, kWBF16 = 2 };

__device__ __forceinline__ float wload(const float* p, size_t i) { return p[i]; }
__device__ __forceinline__ float wload(const __half* p, size_t i) { return __half2float(p[i]); }
__device__ __forceinline__ float wload(const bf16_t* p, size_t i) { return __uint_as_float(uint32_t(p[i].bits) << 16); }

/** Two adjacent weights p[0], p[1] (p 2-element aligned): one 8- or 4-byte load. */
__device__ __forceinline__ float2 wload2(const float* p) { return *reinterpret_cast<const float2*>(p); }
__device__ __forceinline__ float2 wload2(const __half* p) { return __half22float2(*reinterpret_cast<const __half2*>(p)); }
__device__ __forceinline__ float2 wload2(const bf16_t* p) {
  const uint32_t u = *reinterpret_cast<const uint32_t*>(p);
  return make_float2(__uint_as_float(u << 16), __uint_as_float(u & 0xffff0000u));
}

/** Cache element stores and reads (fp32 or fp16 rounded to nearest even). */
__device__ __forceinline__ void cstore(float* p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void cstore(__half* p, size_t i, float v) { p[i] = __float2half_rn(v); }
__device__ __forceinline__ float cload(const float* p, size_t i) { return p[i]; }
__device__ __forceinline__ float cload(const __half* p, size_t i) { return __half2float(p[i]); }

/** v as a cache of type T would hold it (identity for fp32). */
template <typename T>
__device__ __forceinline__ float round_as(float v);
template <>
__device__ __forceinline__ float round_as<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ float round_as<__half>(float v) {
  return __half2float(__float2half_rn(v));
}

__device__ __forceinline__ float quick_gelu(float u) { return u * (1.0f / (1.0f + expf(-1.702f * u))); }

}  // namespace cuda
}  // namespace jb
