// One warp's online-softmax attention over keys, one key at a time: the lanes split
// head_dim (lane + 32 i, i < kDimsPerLane), the score is a warp sum, and each lane keeps its
// slice of the value accumulator. Shared by the decode (fp16 cache) and prefill (fp32 rows)
// attention kernels; T is the element type of the key and value rows.
#pragma once
#include <cuda_fp16.h>

#include "../common/online_softmax.h"
#include "wtype.cuh"

namespace jb {
namespace cuda {

constexpr int kDimsPerLane = 16;  // head_dim <= 32 * 16
constexpr int kMaxHeadDim = 32 * kDimsPerLane;

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }

/** Loads this lane's slice of a query row (zeros past dh) and clears its accumulator. */
__device__ __forceinline__ void warp_query(const float* q, int dh, int lane, float qv[kDimsPerLane], float acc[kDimsPerLane]) {
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    qv[i] = d < dh ? q[d] : 0.0f;
    acc[i] = 0.0f;
  }
}

/** Adds one key (row k) and its value (row v) with score (q . k) * scale. */
template <typename T>
__device__ __forceinline__ void warp_attend_key(const float qv[kDimsPerLane], const T* __restrict__ k, const T* __restrict__ v, int dh,
                                                int lane, float scale, gpu::SoftmaxPartial& st, float acc[kDimsPerLane]) {
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    if (d < dh) s = fmaf(qv[i], to_float(k[d]), s);
  }
  s = warp_sum(s) * scale;
  const float m = fmaxf(st.m, s);
  const float r = gpu::softmax_rescale(st.m, m);
  const float p = expf(s - m);
  st.m = m;
  st.l = st.l * r + p;
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    if (d < dh) acc[i] = fmaf(p, to_float(v[d]), acc[i] * r);
  }
}

/** The score (q . k) * scale of one key whose elements are read as type R would hold them
 *  (a chunk's fp32 key rows read as the fp16 cache would store them: prefill and decode then
 *  see the same keys). */
template <typename R, typename K>
__device__ __forceinline__ float warp_score(const float qv[kDimsPerLane], const K* __restrict__ k, int dh, int lane, float scale) {
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    if (d < dh) s = fmaf(qv[i], round_as<R>(to_float(k[d])), s);
  }
  return warp_sum(s) * scale;
}

/** warp_attend_key with the key and value rounded as type R (see warp_score). */
template <typename R, typename K>
__device__ __forceinline__ void warp_attend_key_as(const float qv[kDimsPerLane], const K* __restrict__ k, const K* __restrict__ v, int dh,
                                                   int lane, float scale, gpu::SoftmaxPartial& st, float acc[kDimsPerLane]) {
  const float s = warp_score<R>(qv, k, dh, lane, scale);
  const float m = fmaxf(st.m, s);
  const float r = gpu::softmax_rescale(st.m, m);
  const float p = expf(s - m);
  st.m = m;
  st.l = st.l * r + p;
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    if (d < dh) acc[i] = fmaf(p, round_as<R>(to_float(v[d])), acc[i] * r);
  }
}

/** out[d] = acc / l for this lane's dims (0 when no key was seen). */
__device__ __forceinline__ void warp_finish(gpu::SoftmaxPartial st, const float acc[kDimsPerLane], float* out, int dh, int lane) {
  const float inv = st.l > 0.0f ? 1.0f / st.l : 0.0f;
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    if (d < dh) out[d] = acc[i] * inv;
  }
}

}  // namespace cuda
}  // namespace jb
