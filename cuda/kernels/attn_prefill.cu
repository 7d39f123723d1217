// Prefill attention (a window's prefix, or a chunk of it, at once), every attention type:
// a warp per (sample, head, query) walks the query's visible key set, an arithmetic run
// (common/attn_index.h visible_keys), with an online softmax (common/online_softmax.h), lanes
// splitting head_dim. Keys are read straight from the q|k|v rows; neighbouring queries of a
// block share them through L1/L2. This is the plain, correct version that the window
// re-prefill can use now; the tiled tensor-core version (query x key tiles in shared memory,
// classify_tile / key_bounds / column_as_row) replaces it behind the same launcher.
// Reference: the engine's attention_ref (csrc/cpu/attention.cc), row by row.
#include "../common/online_softmax.h"
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

}  // namespace

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
