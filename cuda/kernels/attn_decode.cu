// Decode-step attention over the KV cache (fp16, or fp32: templated on the element type T;
// the fp32 cache holds the CPU engine's values exactly), for every attention type of the factorized
// transformer: the cache rows a query reads are one contiguous run (common/kv_layout.h:
// column keys are stored contiguously), so a block walks [first_row, first_row + count) of
// one (sample, head) with no mask. Warps take keys round-robin, lanes split head_dim; each
// warp keeps an online-softmax partial (common/online_softmax.h), the block merges its warps
// in order, and long runs are split across blocks whose partials a second kernel merges in
// order (flash-decoding, common/attn_decode_plan.h): deterministic. The position comes by
// value or from device memory; either way the kernels derive the run, the split count and
// the keys per split from it on the device, so a graph captured once (grid sized for the
// largest split count of the window) replays for every position. Reference: ops_ref.h
// attend_decode (= the engine's DecodeSession attention), kv_store.
#include "../common/attn_decode_plan.h"
#include "../../common/kv_layout.h"
#include "../common/online_softmax.h"
#include "kernels.h"
#include "warp_attend.cuh"
#include "wtype.cuh"
#include "../common/jb_launch.h"

namespace jb {
namespace cuda {

namespace {

constexpr int kWarps = 4;

template <typename T>
struct Args {
  gpu::AttnGeom g;
  int pos;               // used when pos_dev is null
  const int32_t* pos_dev;
  int n, heads, dh, ldq, rows, blocks_wanted;
  float scale;
  const float* q;
  const T* kc;
  const T* vc;
  float* out;
  float* work;  // [sample][head][split][2 + dh]: m, l, acc
};

template <typename T>
__device__ __forceinline__ int position(const Args<T>& a) { return a.pos_dev ? int(*a.pos_dev) : a.pos; }

template <typename T>
__global__ void attn_decode_kernel(Args<T> a) {
  const int h = blockIdx.x, b = blockIdx.y, split = blockIdx.z;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int pos = position(a);
  const int splits = gpu::attn_decode_splits(a.g, pos, a.n, a.heads, a.blocks_wanted);
  if (split >= splits) return;  // the grid is sized for the window's largest split count
  const int keys_per_split = gpu::attn_decode_keys_per_split(a.g, pos, splits);
  const gpu::KVRun run = gpu::kv_run(a.g, pos);
  const int t0 = split * keys_per_split;
  const int t1 = min(run.zero_output ? 0 : run.count, t0 + keys_per_split);
  const float* qh = a.q + size_t(b) * a.ldq + size_t(h) * a.dh;
  float qv[kDimsPerLane], acc[kDimsPerLane];
  warp_query(qh, a.dh, lane, qv, acc);
  gpu::SoftmaxPartial st = gpu::softmax_empty();
  for (int t = t0 + warp; t < t1; t += kWarps) {
    const size_t base = gpu::kv_index(a.rows, a.heads, a.dh, b, h, run.first_row + t, 0);
    warp_attend_key(qv, a.kc + base, a.vc + base, a.dh, lane, a.scale, st, acc);
  }
  // Merge the warps in order through shared memory.
  __shared__ float s_m[kWarps], s_l[kWarps];
  __shared__ float s_acc[kWarps][kMaxHeadDim];
  if (lane == 0) {
    s_m[warp] = st.m;
    s_l[warp] = st.l;
  }
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    if (d < a.dh) s_acc[warp][d] = acc[i];
  }
  __syncthreads();
  if (warp != 0) return;
  gpu::SoftmaxPartial tot{s_m[0], s_l[0]};
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    acc[i] = d < a.dh ? s_acc[0][d] : 0.0f;
  }
  for (int w = 1; w < kWarps; ++w) {
    float sx, sy;
    tot = gpu::softmax_combine(tot, gpu::SoftmaxPartial{s_m[w], s_l[w]}, &sx, &sy);
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      if (d < a.dh) acc[i] = acc[i] * sx + s_acc[w][d] * sy;
    }
  }
  if (splits == 1) {
    warp_finish(tot, acc, a.out + (size_t(b) * a.heads + h) * a.dh, a.dh, lane);
    return;
  }
  float* w = a.work + ((size_t(b) * a.heads + h) * splits + split) * (2 + a.dh);
  if (lane == 0) {
    w[0] = tot.m;
    w[1] = tot.l;
  }
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    if (d < a.dh) w[2 + d] = acc[i];
  }
}

// One warp per (sample, head): the splits' partials merged in order.
template <typename T>
__global__ void attn_combine_kernel(Args<T> a) {
  const int h = blockIdx.x, b = blockIdx.y, lane = threadIdx.x;
  const int splits = gpu::attn_decode_splits(a.g, position(a), a.n, a.heads, a.blocks_wanted);
  if (splits == 1) return;  // the decode kernel wrote the output itself
  const float* w = a.work + (size_t(b) * a.heads + h) * splits * (2 + a.dh);
  gpu::SoftmaxPartial tot = gpu::softmax_empty();
  float acc[kDimsPerLane];
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) acc[i] = 0.0f;
  for (int s = 0; s < splits; ++s) {
    const float* p = w + size_t(s) * (2 + a.dh);
    float sx, sy;
    tot = gpu::softmax_combine(tot, gpu::SoftmaxPartial{p[0], p[1]}, &sx, &sy);
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      if (d < a.dh) acc[i] = acc[i] * sx + p[2 + d] * sy;
    }
  }
  warp_finish(tot, acc, a.out + (size_t(b) * a.heads + h) * a.dh, a.dh, lane);
}

template <typename T>
__global__ void kv_store_kernel(gpu::AttnGeom g, int pos, const int32_t* pos_dev, int rows, int n, int heads, int dh, const float* k,
                                const float* v, int ld, T* kc, T* vc) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t total = size_t(n) * heads * dh;
  if (i >= total) return;
  const int row = gpu::kv_put_row(g, pos_dev ? int(*pos_dev) : pos);
  if (row < 0) return;  // enc-dec layers, or past prime_len
  const int d = int(i % dh), h = int((i / dh) % heads), b = int(i / (size_t(dh) * heads));
  const size_t at = gpu::kv_index(rows, heads, dh, b, h, row, d);
  cstore(kc, at, k[size_t(b) * ld + h * dh + d]);
  cstore(vc, at, v[size_t(b) * ld + h * dh + d]);
}

// A chunk's keys/values, (b, i, h, d) per thread; a ring row that a later position of the
// same chunk also maps to is left to that position (one writer per element).
template <typename T>
__global__ void kv_store_chunk_kernel(gpu::AttnGeom g, int p0, int c, int rows, int n, int heads, int dh, const float* __restrict__ k,
                                      const float* __restrict__ v, int ld, T* kc, T* vc) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t per_row = size_t(heads) * dh;
  if (i >= size_t(n) * c * per_row) return;
  const int d = int(i % dh), h = int((i / dh) % heads);
  const size_t r = i / per_row;  // (b, position in chunk)
  const int b = int(r / c), ip = int(r % c), pos = p0 + ip;
  const int row = gpu::kv_put_row(g, pos);
  if (row < 0) return;
  const int period = g.func == gpu::kAttnRow ? g.block_ctx : g.func == gpu::kAttnPrevRow ? 2 * g.block_ctx : 0;
  if (period > 0 && pos + period < p0 + c) return;  // overwritten by a later position of the chunk
  const size_t at = gpu::kv_index(rows, heads, dh, b, h, row, d);
  cstore(kc, at, k[r * ld + h * dh + d]);
  cstore(vc, at, v[r * ld + h * dh + d]);
}

template <typename T>
__global__ void kv_fill_encoder_kernel(int enc_len, int n, int heads, int dh, const float* __restrict__ k, const float* __restrict__ v, int ld,
                                       T* kc, T* vc) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t per_row = size_t(heads) * dh;
  if (i >= size_t(n) * enc_len * per_row) return;
  const int d = int(i % dh), h = int((i / dh) % heads);
  const size_t r = i / per_row;
  const int b = int(r / enc_len), j = int(r % enc_len);
  const size_t at = gpu::kv_index(enc_len, heads, dh, b, h, j, d);
  cstore(kc, at, k[r * ld + h * dh + d]);
  cstore(vc, at, v[r * ld + h * dh + d]);
}

}  // namespace

int attn_decode_splits(const gpu::AttnGeom& g, int pos, int n, int heads, int blocks_wanted) {
  return gpu::attn_decode_splits(g, pos, n, heads, blocks_wanted);
}

size_t attn_decode_workspace_floats(const gpu::AttnGeom& g, int pos, int n, int heads, int dh, int blocks_wanted) {
  const int splits = gpu::attn_decode_splits(g, pos, n, heads, blocks_wanted);
  return splits > 1 ? size_t(n) * heads * splits * (2 + dh) : 0;
}

size_t attn_decode_workspace_floats_max(const gpu::AttnGeom& g, int n, int heads, int dh, int blocks_wanted) {
  const int splits = gpu::attn_decode_max_splits(g, n, heads, blocks_wanted);
  return splits > 1 ? size_t(n) * heads * splits * (2 + dh) : 0;
}

namespace {

template <typename T>
cudaError_t launch_attn_decode(const gpu::AttnGeom& g, int pos, const int32_t* pos_dev, int n, int heads, int dh, const float* q, int ldq,
                               const T* kc, const T* vc, float* out, float* work, int blocks_wanted, cudaStream_t stream) {
  if (n < 1 || heads < 1 || dh < 1 || dh > kMaxHeadDim || ldq < heads * dh || !gpu::attn_func_supported(g.func) || g.len < 1) {
    return cudaErrorInvalidValue;
  }
  if (!pos_dev && (pos < 0 || pos >= g.len)) return cudaErrorInvalidValue;
  Args<T> a;
  a.g = g;
  a.pos = pos;
  a.pos_dev = pos_dev;
  a.n = n;
  a.heads = heads;
  a.dh = dh;
  a.ldq = ldq;
  a.rows = gpu::kv_rows(g);
  a.blocks_wanted = blocks_wanted;
  a.scale = gpu::attn_score_scale(dh);
  a.q = q;
  a.kc = kc;
  a.vc = vc;
  a.out = out;
  a.work = work;
  // by value: exactly this position's splits; from device memory: the window's largest
  const int splits = pos_dev ? gpu::attn_decode_max_splits(g, n, heads, blocks_wanted) : gpu::attn_decode_splits(g, pos, n, heads, blocks_wanted);
  if (splits > 1 && !work) return cudaErrorInvalidValue;
  JB_LAUNCH(attn_decode_kernel<T>, dim3(heads, n, splits), 32 * kWarps, 0, stream)(a);
  if (splits > 1) JB_LAUNCH(attn_combine_kernel<T>, dim3(heads, n), 32, 0, stream)(a);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_kv_store(const gpu::AttnGeom& g, int pos, const int32_t* pos_dev, int n, int heads, int dh, const float* k, const float* v,
                            int ld, T* kc, T* vc, cudaStream_t stream) {
  if (!pos_dev && gpu::kv_put_row(g, pos) < 0) return cudaSuccess;
  if (g.func == gpu::kAttnEncDec) return cudaSuccess;  // its caches hold the encoder's keys
  const size_t total = size_t(n) * heads * dh;
  if (total == 0) return cudaSuccess;
  JB_LAUNCH(kv_store_kernel<T>, unsigned((total + 255) / 256), 256, 0, stream)(g, pos, pos_dev, gpu::kv_rows(g), n, heads, dh, k, v, ld, kc, vc);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_kv_store_chunk(const gpu::AttnGeom& g, int p0, int c, int n, int heads, int dh, const float* k, const float* v, int ld, T* kc,
                                  T* vc, cudaStream_t stream) {
  if (g.func == gpu::kAttnEncDec || c < 1) return cudaSuccess;
  if (n < 1 || heads < 1 || dh < 1 || p0 < 0 || p0 + c > g.len) return cudaErrorInvalidValue;
  const size_t total = size_t(n) * c * heads * dh;
  JB_LAUNCH(kv_store_chunk_kernel<T>, unsigned((total + 255) / 256), 256, 0, stream)(g, p0, c, gpu::kv_rows(g), n, heads, dh, k, v, ld, kc, vc);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_kv_fill_encoder(int enc_len, int n, int heads, int dh, const float* k, const float* v, int ld, T* kc, T* vc,
                                   cudaStream_t stream) {
  if (enc_len < 1 || n < 1) return cudaSuccess;
  const size_t total = size_t(n) * enc_len * heads * dh;
  JB_LAUNCH(kv_fill_encoder_kernel<T>, unsigned((total + 255) / 256), 256, 0, stream)(enc_len, n, heads, dh, k, v, ld, kc, vc);
  return cudaGetLastError();
}

}  // namespace

cudaError_t attn_decode(const gpu::AttnGeom& g, int pos, int n, int heads, int dh, const float* q, int ldq, const __half* kc,
                        const __half* vc, float* out, float* work, int blocks_wanted, cudaStream_t stream) {
  return launch_attn_decode(g, pos, nullptr, n, heads, dh, q, ldq, kc, vc, out, work, blocks_wanted, stream);
}

cudaError_t attn_decode(const gpu::AttnGeom& g, const int32_t* pos, int n, int heads, int dh, const float* q, int ldq, const __half* kc,
                        const __half* vc, float* out, float* work, int blocks_wanted, cudaStream_t stream) {
  if (!pos) return cudaErrorInvalidValue;
  return launch_attn_decode(g, 0, pos, n, heads, dh, q, ldq, kc, vc, out, work, blocks_wanted, stream);
}

cudaError_t kv_store(const gpu::AttnGeom& g, int pos, int n, int heads, int dh, const float* k, const float* v, int ld, __half* kc,
                     __half* vc, cudaStream_t stream) {
  return launch_kv_store(g, pos, nullptr, n, heads, dh, k, v, ld, kc, vc, stream);
}

cudaError_t kv_store(const gpu::AttnGeom& g, const int32_t* pos, int n, int heads, int dh, const float* k, const float* v, int ld, __half* kc,
                     __half* vc, cudaStream_t stream) {
  if (!pos) return cudaErrorInvalidValue;
  return launch_kv_store(g, 0, pos, n, heads, dh, k, v, ld, kc, vc, stream);
}

cudaError_t kv_store(const gpu::AttnGeom& g, const int32_t* pos, int n, int heads, int dh, const float* k, const float* v, int ld, float* kc,
                     float* vc, cudaStream_t stream) {
  if (!pos) return cudaErrorInvalidValue;
  return launch_kv_store(g, 0, pos, n, heads, dh, k, v, ld, kc, vc, stream);
}

cudaError_t attn_decode(const gpu::AttnGeom& g, const int32_t* pos, int n, int heads, int dh, const float* q, int ldq, const float* kc,
                        const float* vc, float* out, float* work, int blocks_wanted, cudaStream_t stream) {
  if (!pos) return cudaErrorInvalidValue;
  return launch_attn_decode(g, 0, pos, n, heads, dh, q, ldq, kc, vc, out, work, blocks_wanted, stream);
}

cudaError_t attn_decode(const gpu::AttnGeom& g, int pos, int n, int heads, int dh, const float* q, int ldq, const float* kc,
                        const float* vc, float* out, float* work, int blocks_wanted, cudaStream_t stream) {
  return launch_attn_decode(g, pos, nullptr, n, heads, dh, q, ldq, kc, vc, out, work, blocks_wanted, stream);
}

cudaError_t kv_store_chunk(const gpu::AttnGeom& g, int p0, int c, int n, int heads, int dh, const float* k, const float* v, int ld,
                           float* kc, float* vc, cudaStream_t stream) {
  return launch_kv_store_chunk(g, p0, c, n, heads, dh, k, v, ld, kc, vc, stream);
}

cudaError_t kv_store_chunk(const gpu::AttnGeom& g, int p0, int c, int n, int heads, int dh, const float* k, const float* v, int ld,
                           __half* kc, __half* vc, cudaStream_t stream) {
  return launch_kv_store_chunk(g, p0, c, n, heads, dh, k, v, ld, kc, vc, stream);
}

cudaError_t kv_fill_encoder(int enc_len, int n, int heads, int dh, const float* k, const float* v, int ld, float* kc, float* vc,
                            cudaStream_t stream) {
  return launch_kv_fill_encoder(enc_len, n, heads, dh, k, v, ld, kc, vc, stream);
}

cudaError_t kv_fill_encoder(int enc_len, int n, int heads, int dh, const float* k, const float* v, int ld, __half* kc, __half* vc,
                            cudaStream_t stream) {
  return launch_kv_fill_encoder(enc_len, n, heads, dh, k, v, ld, kc, vc, stream);
}

}  // namespace cuda
}  // namespace jb
