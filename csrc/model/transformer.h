// The factorized ("sparse") transformer of the priors and the lyric encoder
// (jukebox/transformer/transformer.py; reference §c.3): pre-LN residual blocks
//   a = attn(ln_0(x)); m = mlp(ln_1(x + a)); x = x + a + m
// with quick-GELU MLPs and Conv1D weights stored (in, out). The per-layer attention type
// comes from attn_order (decided in lib/prior/layout.ts).
#pragma once
#include <functional>
#include <vector>

#include "../core/progress.h"
#include "../core/thread_pool.h"
#include "../cpu/matmul.h"

namespace jb {

struct Linear {
  WeightView w;                 // (in, out)
  const float* b = nullptr;     // (out)
};

struct LayerNormW {
  const float* w = nullptr;
  const float* b = nullptr;
};

struct TransformerLayer {
  int attn_func = 0;
  LayerNormW ln_0, ln_1;
  Linear c_attn;    // (w, 3s), or (w, s) for encoder-decoder layers
  Linear c_enc_kv;  // encoder-decoder layers: (w, 2s)
  Linear c_proj;    // (s, w)
  Linear mlp_fc;    // (w, m)
  Linear mlp_proj;  // (m, w)
};

struct TransformerDims {
  int width = 0;      // w
  int state = 0;      // s = m_attn * w
  int mlp = 0;        // m_mlp * w
  int heads = 1;
  int len = 0;        // context length of the full forward
  int blocks = 1;     // len / block_ctx
  int prime_len = 0;  // attention type 7: the original's _prime_len
  int enc_len = 0;    // attention type 6: encoder positions
  float res_scale = 1.0f;
};

class Transformer {
 public:
  Transformer(TransformerDims dims, std::vector<TransformerLayer> layers);

  const TransformerDims& dims() const { return dims_; }
  int depth() const { return int(layers_.size()); }
  bool needs_encoder() const;

  // Called during a forward with each layer's projected q|k|v rows (len x 3s, row stride
  // 3s) of batch item b, so a decode session can fill its caches in the same pass.
  using KVCapture = std::function<void(int layer, int b, const float* qkv, int len)>;

  // h: n sequences of `len` (<= dims().len; a prefix for prefill) x width, updated in place.
  // encoder_kv: n x enc_len x width when needs_encoder(). record: optional (depth, len, width)
  // residual stream after each layer for batch item 0 (tests compare it with the original's).
  // attn_layer/attn_head/attn_out: optional attention probabilities of one head of one
  // layer, n x len x keys (keys = enc_len for encoder-decoder layers, else len).
  void forward(float* h, int n, int len, const float* encoder_kv, ThreadPool& pool,
               Progress& progress, float* record = nullptr, const KVCapture& capture = nullptr,
               int attn_layer = -1, int attn_head = 0, float* attn_out = nullptr) const;
  const TransformerLayer& layer(int i) const { return layers_[i]; }
  double flops(int n) const;

 private:
  TransformerDims dims_;
  std::vector<TransformerLayer> layers_;
};

void layer_norm(const float* x, int rows, int width, const LayerNormW& ln, float* y);

// The second half of a residual block, for `rows` positions: given the residual stream h
// and the attention output a, h = (h + a) + mlp(ln_1(h + a)). x and mid are scratch
// (rows x width, rows x mlp); x is left holding the MLP output.
void mlp_residual(const TransformerLayer& l, const TransformerDims& d, int rows, float* h,
                  const float* a, float* x, float* mid, ThreadPool& pool);

}  // namespace jb
