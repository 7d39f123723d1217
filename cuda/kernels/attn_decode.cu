// Decode-step attention over the fp16 KV cache, for every attention type of the factorized
// transformer: the cache rows a query reads are one contiguous run (common/kv_layout.h:
// column keys are stored contiguously), so a block walks [first_row, first_row + count) of
// one (sample, head) with no mask. Warps take keys round-robin, lanes split head_dim; each
// warp keeps an online-softmax partial (common/online_softmax.h), the block merges its warps
// in order, and long runs are split across blocks whose partials a second kernel merges in
// order (flash-decoding): deterministic. Reference: ops_ref.h attend_decode (= the engine's
// DecodeSession attention), kv_store.
#include "../common/kv_layout.h"
#include "../common/online_softmax.h"
#include "kernels.h"
#include "warp_attend.cuh"

namespace jb {
namespace cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kMinKeysPerSplit = 64;

struct Args {
  gpu::AttnGeom g;
  int pos, n, heads, dh, ldq, rows, splits, keys_per_split;
  float scale;
  const float* q;
  const __half* kc;
  const __half* vc;
  float* out;
  float* work;  // [sample][head][split][2 + dh]: m, l, acc
};

__global__ void attn_decode_kernel(Args a) {
  const int h = blockIdx.x, b = blockIdx.y, split = blockIdx.z;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const gpu::KVRun run = gpu::kv_run(a.g, a.pos);
  const int t0 = split * a.keys_per_split;
  const int t1 = min(run.zero_output ? 0 : run.count, t0 + a.keys_per_split);
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
  if (a.splits == 1) {
    warp_finish(tot, acc, a.out + (size_t(b) * a.heads + h) * a.dh, a.dh, lane);
    return;
  }
  float* w = a.work + ((size_t(b) * a.heads + h) * a.splits + split) * (2 + a.dh);
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
__global__ void attn_combine_kernel(Args a) {
  const int h = blockIdx.x, b = blockIdx.y, lane = threadIdx.x;
  const float* w = a.work + (size_t(b) * a.heads + h) * a.splits * (2 + a.dh);
  gpu::SoftmaxPartial tot = gpu::softmax_empty();
  float acc[kDimsPerLane];
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) acc[i] = 0.0f;
  for (int s = 0; s < a.splits; ++s) {
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

__global__ void kv_store_kernel(gpu::AttnGeom g, int row, int rows, int n, int heads, int dh, const float* k, const float* v, int ld,
                                __half* kc, __half* vc) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t total = size_t(n) * heads * dh;
  if (i >= total) return;
  const int d = int(i % dh), h = int((i / dh) % heads), b = int(i / (size_t(dh) * heads));
  const size_t at = gpu::kv_index(rows, heads, dh, b, h, row, d);
  kc[at] = __float2half_rn(k[size_t(b) * ld + h * dh + d]);
  vc[at] = __float2half_rn(v[size_t(b) * ld + h * dh + d]);
}

}  // namespace

int attn_decode_splits(const gpu::AttnGeom& g, int pos, int n, int heads, int blocks_wanted) {
  const gpu::KVRun run = gpu::kv_run(g, pos);
  const int count = run.zero_output ? 0 : run.count;
  const int pairs = gpu::max_i(1, n * heads);
  int splits = blocks_wanted > pairs ? gpu::ceil_div(blocks_wanted, pairs) : 1;
  splits = gpu::min_i(splits, gpu::max_i(1, count / kMinKeysPerSplit));
  return splits;
}

size_t attn_decode_workspace_floats(const gpu::AttnGeom& g, int pos, int n, int heads, int dh, int blocks_wanted) {
  const int splits = attn_decode_splits(g, pos, n, heads, blocks_wanted);
  return splits > 1 ? size_t(n) * heads * splits * (2 + dh) : 0;
}

cudaError_t attn_decode(const gpu::AttnGeom& g, int pos, int n, int heads, int dh, const float* q, int ldq, const __half* kc,
                        const __half* vc, float* out, float* work, int blocks_wanted, cudaStream_t stream) {
  if (n < 1 || heads < 1 || dh < 1 || dh > kMaxHeadDim || ldq < heads * dh || pos < 0 || pos >= g.len || !gpu::attn_func_supported(g.func)) {
    return cudaErrorInvalidValue;
  }
  Args a;
  a.g = g;
  a.pos = pos;
  a.n = n;
  a.heads = heads;
  a.dh = dh;
  a.ldq = ldq;
  a.rows = gpu::kv_rows(g);
  a.splits = attn_decode_splits(g, pos, n, heads, blocks_wanted);
  const gpu::KVRun run = gpu::kv_run(g, pos);
  a.keys_per_split = gpu::max_i(1, gpu::ceil_div(run.count, a.splits));
  a.scale = gpu::attn_score_scale(dh);
  a.q = q;
  a.kc = kc;
  a.vc = vc;
  a.out = out;
  a.work = work;
  if (a.splits > 1 && !work) return cudaErrorInvalidValue;
  attn_decode_kernel<<<dim3(heads, n, a.splits), 32 * kWarps, 0, stream>>>(a);
  if (a.splits > 1) attn_combine_kernel<<<dim3(heads, n), 32, 0, stream>>>(a);
  return cudaGetLastError();
}

cudaError_t kv_store(const gpu::AttnGeom& g, int pos, int n, int heads, int dh, const float* k, const float* v, int ld, __half* kc,
                     __half* vc, cudaStream_t stream) {
  const int row = gpu::kv_put_row(g, pos);
  if (row < 0) return cudaSuccess;
  const size_t total = size_t(n) * heads * dh;
  kv_store_kernel<<<unsigned((total + 255) / 256), 256, 0, stream>>>(g, row, gpu::kv_rows(g), n, heads, dh, k, v, ld, kc, vc);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace jb
