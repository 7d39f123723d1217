// decode_layer.h: one layer's decode step as a chain of this folder's kernels; every launch
// is on `stream`, none synchronizes, and none depends on the position on the host (it is
// read from device memory), so a whole step (all layers) can be captured in a CUDA graph once
// and replayed for every position. Reference: ops_ref.h decode_layer_step.
#include <algorithm>

#include "decode_layer.h"
#include "kernels.h"

namespace jb {
namespace cuda {

namespace {

gpu::AttnGeom geom(const DevLayer& l, const DevDims& d) {
  gpu::AttnGeom g;
  g.func = l.attn_func;
  g.len = d.len;
  g.block_ctx = d.len / d.blocks;
  g.prime_len = d.prime_len;
  g.enc_len = d.enc_len;
  return g;
}

size_t work_floats(const DevDims& d, int n, int blocks_wanted) {
  size_t w = 0;
  for (int k : {d.width, d.state, d.mlp})
    for (int o : {d.width, 3 * d.state, d.state, d.mlp}) w = std::max(w, gemv_workspace_floats(n, k, o, blocks_wanted));
  const int dh = d.state / d.heads;
  for (int func : {0, 1, 2, 3, 6, 7}) {
    DevLayer l;
    l.attn_func = func;
    w = std::max(w, attn_decode_workspace_floats_max(geom(l, d), n, d.heads, dh, blocks_wanted));
  }
  return w;
}

}  // namespace

size_t decode_scratch_floats(const DevDims& d, int n, int blocks_wanted) {
  // x, a (n x w), qkv (n x 3s), att (n x s), mid (n x m), then the kernels' workspace
  return size_t(n) * (2 * d.width + 3 * d.state + d.state + d.mlp) + work_floats(d, n, blocks_wanted);
}

cudaError_t decode_layer_step(const DevLayer& l, const DevDims& d, const int32_t* pos, int n, float* h, float* scratch, int blocks_wanted,
                              cudaStream_t stream) {
  const int w = d.width, s = d.state, dh = s / d.heads;
  float* x = scratch;
  float* a = x + size_t(n) * w;
  float* qkv = a + size_t(n) * w;
  float* att = qkv + size_t(n) * 3 * s;
  float* mid = att + size_t(n) * s;
  float* work = mid + size_t(n) * d.mlp;
  const bool enc = l.attn_func == 6;
  const int ld = enc ? s : 3 * s;
  const gpu::AttnGeom g = geom(l, d);
  cudaError_t e;
#define JB_TRY(call)                    \
  if ((e = (call)) != cudaSuccess) return e
  JB_TRY(layer_norm(h, n, w, l.ln0_w, l.ln0_b, x, stream));
  JB_TRY(gemv_f16(x, n, w, ld, l.c_attn.w, false, l.c_attn.b, qkv, work, blocks_wanted, stream));
  if (!enc) JB_TRY(kv_store(g, pos, n, d.heads, dh, qkv + s, qkv + 2 * s, ld, l.kc, l.vc, stream));
  JB_TRY(attn_decode(g, pos, n, d.heads, dh, qkv, ld, l.kc, l.vc, att, work, blocks_wanted, stream));
  JB_TRY(gemv_f16(att, n, s, w, l.c_proj.w, false, l.c_proj.b, a, work, blocks_wanted, stream));
  JB_TRY(add(x, h, a, size_t(n) * w, stream));
  JB_TRY(layer_norm(x, n, w, l.ln1_w, l.ln1_b, x, stream));
  JB_TRY(gemv_f16(x, n, w, d.mlp, l.mlp_fc.w, false, l.mlp_fc.b, mid, work, blocks_wanted, stream));
  JB_TRY(bias_quick_gelu(mid, nullptr, n, d.mlp, stream));
  JB_TRY(gemv_f16(mid, n, d.mlp, w, l.mlp_proj.w, false, l.mlp_proj.b, x, work, blocks_wanted, stream));
  JB_TRY(residual(h, a, x, size_t(n) * w, d.res_scale, stream));
#undef JB_TRY
  return cudaSuccess;
}

}  // namespace cuda
}  // namespace jb
