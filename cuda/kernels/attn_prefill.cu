// Prefill attention (a window's prefix, or a chunk of it, at once), every attention type:
// a warp per (sample, head, query) walks the query's visible key set, an arithmetic run
// (common/attn_index.h visible_keys), with an online softmax (common/online_softmax.h), lanes
// splitting head_dim. Keys are read straight from the q|k|v rows; neighbouring queries of a
// block share them through L1/L2. This is the plain, correct version that the window
// re-prefill can use now; the tiled tensor-core version (query x key tiles in shared memory,
// classify_tile / key_bounds / column_as_row) replaces it behind the same launcher.
// Reference: the engine's attention_ref (csrc/cpu/attention.cc), row by row.
//
// attn_chunk (the model's prefill and teacher-forced forward): the same walk for a chunk of
// positions [p0, p0 + c) whose earlier keys are already in the KV cache (fp32 or fp16):
// a key j >= p0 comes from the chunk's own q|k|v rows, j < p0 from its cache row, so a
// chunk may span blocks and any chunking gives the same bits (with an fp32 cache). With
// `probs` it also writes one head's attention probabilities (lyric alignment): a second
// walk over the keys with the final (m, l). Bytes per (query, head): count keys x 2 x dh x
// sizeof(T) read (mostly from L1/L2: a block's 4 queries share their block's keys), 4 dh
// FLOPs per key: bandwidth bound on L2 like the decode attention, with no score matrix
// written to global memory.
#include "../common/online_softmax.h"
#include "../../common/kv_layout.h"
#include "kernels.h"
#include "warp_attend.cuh"
#include "../common/jb_launch.h"

namespace jb {
namespace cuda {

namespace {

constexpr int kWarps = 4;

struct Args {
  gpu::AttnGeom g;
  int q_begin, q_end, heads, dh;
  float scale;
  PrefillIO io;
};

__global__ void attn_prefill_kernel(Args a) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int i = a.q_begin + blockIdx.x * kWarps + warp;
  const int h = blockIdx.y, b = blockIdx.z;
  if (i >= a.q_end) return;
  const gpu::KeySpan span = gpu::visible_keys(a.g, i);
  const float* qh = a.io.q + b * a.io.q_sample + size_t(i) * a.io.ldq + size_t(h) * a.dh;
  float qv[kDimsPerLane], acc[kDimsPerLane];
  warp_query(qh, a.dh, lane, qv, acc);
  gpu::SoftmaxPartial st = gpu::softmax_empty();
  const int count = span.zero_output ? 0 : span.count;
  for (int t = 0; t < count; ++t) {
    const int j = span.at(t);
    const float* kr = a.io.k + b * a.io.kv_sample + size_t(j) * a.io.ldk + size_t(h) * a.dh;
    const float* vr = a.io.v + b * a.io.kv_sample + size_t(j) * a.io.ldv + size_t(h) * a.dh;
    warp_attend_key(qv, kr, vr, a.dh, lane, a.scale, st, acc);
  }
  warp_finish(st, acc, a.io.out + b * a.io.out_sample + size_t(i) * a.io.ldo + size_t(h) * a.dh, a.dh, lane);
}

template <typename T>
struct ChunkArgs {
  gpu::AttnGeom g;
  ChunkAttn a;
  int rows, keys;
  float scale;
  const T* kc;
  const T* vc;
};

// Where key j of query (b, h) lives: the chunk's rows (fp32) or the cache (T).
template <typename T>
__device__ __forceinline__ bool key_in_rows(const ChunkArgs<T>& x, int j) {
  return x.g.func != gpu::kAttnEncDec && j >= x.a.p0;
}

template <typename T>
__global__ void attn_chunk_kernel(ChunkArgs<T> x) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int i = blockIdx.x * kWarps + warp;
  const int h = blockIdx.y, b = blockIdx.z;
  const ChunkAttn& a = x.a;
  if (i >= a.c) return;
  const int pos = a.p0 + i;
  const gpu::KeySpan span = gpu::visible_keys(x.g, pos);
  const float* qh = a.qkv + (size_t(b) * a.c + i) * a.ld + size_t(h) * a.dh;
  float qv[kDimsPerLane], acc[kDimsPerLane];
  warp_query(qh, a.dh, lane, qv, acc);
  gpu::SoftmaxPartial st = gpu::softmax_empty();
  const int count = span.zero_output ? 0 : span.count;
  for (int t = 0; t < count; ++t) {
    const int j = span.at(t);
    if (key_in_rows(x, j)) {
      const float* r = a.qkv + (size_t(b) * a.c + (j - a.p0)) * a.ld + size_t(h) * a.dh;
      warp_attend_key_as<T>(qv, r + a.koff, r + a.voff, a.dh, lane, x.scale, st, acc);
    } else {
      const int row = x.g.func == gpu::kAttnEncDec ? j : gpu::kv_put_row(x.g, j);
      const size_t base = gpu::kv_index(x.rows, a.heads, a.dh, b, h, row, 0);
      warp_attend_key(qv, x.kc + base, x.vc + base, a.dh, lane, x.scale, st, acc);
    }
  }
  warp_finish(st, acc, a.out + (size_t(b) * a.c + i) * a.ldo + size_t(h) * a.dh, a.dh, lane);
  if (!a.probs || h != a.probs_head || count == 0) return;
  // p_j = exp(s_j - m) * (1 / l), as the engine's attention_forward records it
  const float inv = 1.0f / st.l;
  float* pr = a.probs + (size_t(b) * a.probs_len + pos) * x.keys;
  for (int t = 0; t < count; ++t) {
    const int j = span.at(t);
    float s;
    if (key_in_rows(x, j)) {
      s = warp_score<T>(qv, a.qkv + (size_t(b) * a.c + (j - a.p0)) * a.ld + size_t(h) * a.dh + a.koff, a.dh, lane, x.scale);
    } else {
      const int row = x.g.func == gpu::kAttnEncDec ? j : gpu::kv_put_row(x.g, j);
      s = warp_score<T>(qv, x.kc + gpu::kv_index(x.rows, a.heads, a.dh, b, h, row, 0), a.dh, lane, x.scale);
    }
    if (lane == 0) pr[j] = expf(s - st.m) * inv;
  }
}

template <typename T>
cudaError_t launch_attn_chunk(const gpu::AttnGeom& g, const ChunkAttn& a, const T* kc, const T* vc, cudaStream_t stream) {
  if (a.n < 1 || a.heads < 1 || a.dh < 1 || a.dh > kMaxHeadDim || a.p0 < 0 || a.c < 0 || a.p0 + a.c > g.len || !gpu::attn_func_supported(g.func))
    return cudaErrorInvalidValue;
  if (a.c == 0) return cudaSuccess;
  ChunkArgs<T> x;
  x.g = g;
  x.a = a;
  x.rows = gpu::kv_rows(g);
  x.keys = gpu::attn_key_positions(g);
  x.scale = gpu::attn_score_scale(a.dh);
  x.kc = kc;
  x.vc = vc;
  const dim3 grid(gpu::ceil_div(a.c, kWarps), a.heads, a.n);
  JB_LAUNCH(attn_chunk_kernel<T>, grid, 32 * kWarps, 0, stream)(x);
  return cudaGetLastError();
}

}  // namespace

cudaError_t attn_chunk(const gpu::AttnGeom& g, const ChunkAttn& a, const float* kc, const float* vc, cudaStream_t stream) {
  return launch_attn_chunk(g, a, kc, vc, stream);
}

cudaError_t attn_chunk(const gpu::AttnGeom& g, const ChunkAttn& a, const __half* kc, const __half* vc, cudaStream_t stream) {
  return launch_attn_chunk(g, a, kc, vc, stream);
}

cudaError_t attn_prefill(const gpu::AttnGeom& g, int q_begin, int q_end, int n, int heads, int dh, const PrefillIO& io, cudaStream_t stream) {
  if (n < 1 || heads < 1 || dh < 1 || dh > kMaxHeadDim || q_begin < 0 || q_end > g.len || !gpu::attn_func_supported(g.func)) {
    return cudaErrorInvalidValue;
  }
  if (q_end <= q_begin) return cudaSuccess;
  Args a;
  a.g = g;
  a.q_begin = q_begin;
  a.q_end = q_end;
  a.heads = heads;
  a.dh = dh;
  a.scale = gpu::attn_score_scale(dh);
  a.io = io;
  const dim3 grid(gpu::ceil_div(q_end - q_begin, kWarps), heads, n);
  JB_LAUNCH(attn_prefill_kernel, grid, 32 * kWarps, 0, stream)(a);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace jb
