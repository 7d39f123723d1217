#include "transformer.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "../core/buffer.h"
#include "../cpu/attention.h"
#include "../cpu/cpu_features.h"
#include "../cpu/vec.h"

namespace jb {

void layer_norm(const float* x, int rows, int width, const LayerNormW& ln, float* y) {
  // torch LayerNorm, eps 1e-5, biased variance, fp32 (jukebox/transformer/ops.py).
  int r = 0;
  if (isa_at_least(Isa::Avx2Fma))  // 4 rows at a time, the same arithmetic per row (AVX2; AVX-512 CPUs too)
    for (; r + 4 <= rows; r += 4)
      layer_norm4_avx2(x + size_t(r) * width, width, ln.w, ln.b, y + size_t(r) * width);
  for (; r < rows; ++r) {
    const float* xr = x + size_t(r) * width;
    float* yr = y + size_t(r) * width;
    double mean = 0;
    for (int i = 0; i < width; ++i) mean += xr[i];
    mean /= width;
    double var = 0;
    for (int i = 0; i < width; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= width;
    const double inv = 1.0 / std::sqrt(var + 1e-5);
    for (int i = 0; i < width; ++i) yr[i] = float((xr[i] - mean) * inv) * ln.w[i] + ln.b[i];
  }
}

void mlp_residual(const TransformerLayer& l, const TransformerDims& d, int rows, float* h,
                  const float* a, float* x, float* mid, ThreadPool& pool) {
  const size_t n = size_t(rows) * d.width, nm = size_t(rows) * d.mlp;
  // The elementwise stages are split by rows for prefill-sized calls (per element the
  // arithmetic is unchanged). Costs in GEMM-FLOP equivalents of time (thread_pool.h): an
  // add and a LayerNorm element ~10, a quick-GELU element (expf and a division) ~100.
  constexpr int kRowsPerTask = 16;  // a multiple of 4: layer_norm's 4-row groups stay whole
  const int tasks = (rows + kRowsPerTask - 1) / kRowsPerTask;
  pool.parallel_for(tasks, 10.0 * double(n), [&](int t, int) {
    const int r0 = t * kRowsPerTask, r1 = std::min(rows, r0 + kRowsPerTask);
    const size_t i0 = size_t(r0) * d.width, i1 = size_t(r1) * d.width;
    for (size_t i = i0; i < i1; ++i) x[i] = h[i] + a[i];
    layer_norm(x + i0, r1 - r0, d.width, l.ln_1, x + i0);
  });
  matmul(x, rows, d.width, l.mlp_fc.w, l.mlp_fc.b, mid, d.mlp, false, pool);
  pool.parallel_for(tasks, 100.0 * double(nm), [&](int t, int) {
    const size_t i0 = size_t(t) * kRowsPerTask * d.mlp, i1 = std::min(nm, i0 + size_t(kRowsPerTask) * d.mlp);
    for (size_t i = i0; i < i1; ++i) {
      const float v = mid[i];
      mid[i] = v * (1.0f / (1.0f + std::exp(-1.702f * v)));  // quick_gelu
    }
  });
  matmul(mid, rows, d.mlp, l.mlp_proj.w, l.mlp_proj.b, x, d.width, false, pool);
  // h = x + a + m, in the original's order of additions
  if (d.res_scale == 1.0f) {
    for (size_t i = 0; i < n; ++i) h[i] = (h[i] + a[i]) + x[i];
  } else {
    for (size_t i = 0; i < n; ++i) h[i] = h[i] + d.res_scale * (a[i] + x[i]);
  }
}

Transformer::Transformer(TransformerDims dims, std::vector<TransformerLayer> layers)
    : dims_(dims), layers_(std::move(layers)) {
  require(dims_.width > 0 && dims_.state > 0 && dims_.heads > 0 && dims_.state % dims_.heads == 0,
          "ERR_HPARAMS", "transformer: state width must be a positive multiple of heads");
  require(dims_.blocks > 0 && dims_.len % dims_.blocks == 0, "ERR_HPARAMS",
          "transformer: context " + std::to_string(dims_.len) + " is not a multiple of blocks " +
              std::to_string(dims_.blocks));
  for (const auto& l : layers_)
    require(attention_func_supported(l.attn_func), "ERR_HPARAMS",
            "attention type " + std::to_string(l.attn_func) +
                " is not supported (summary attention: no official model uses it)");
}

bool Transformer::needs_encoder() const {
  for (const auto& l : layers_)
    if (l.attn_func == 6) return true;
  return false;
}

double Transformer::flops(int n) const {
  const double L = dims_.len, w = dims_.width, s = dims_.state, m = dims_.mlp;
  return 2.0 * n * L * layers_.size() * (w * 3 * s + s * w + 2 * w * m);
}

void Transformer::forward(float* h, int n, int len, const float* encoder_kv, ThreadPool& pool,
                          Progress& progress, float* record, const KVCapture& capture, int attn_layer,
                          int attn_head, float* attn_out) const {
  const TransformerDims& d = dims_;
  require(len > 0 && len <= d.len, "ERR_INVALID_ARGUMENT", "sequence longer than the context");
  const int L = len, w = d.width, s = d.state;
  require(!needs_encoder() || encoder_kv != nullptr, "ERR_INVALID_ARGUMENT",
          "this transformer has encoder-decoder layers: lyric encoder output is required");
  Buffer<float> x(size_t(L) * w, "transformer activations"), qkv(size_t(L) * 3 * s, "attention qkv");
  Buffer<float> att(size_t(L) * s, "attention output"), a(size_t(L) * w, "attention projection");
  Buffer<float> mid(size_t(L) * d.mlp, "mlp activations");
  Buffer<float> kv(size_t(std::max(d.enc_len, 1)) * 2 * s, "encoder keys and values");
  const double layer_flops = flops(1) / std::max<size_t>(1, layers_.size()) * L / d.len;

  for (int b = 0; b < n; ++b) {
    float* hb = h + size_t(b) * L * w;
    for (size_t li = 0; li < layers_.size(); ++li) {
      const TransformerLayer& l = layers_[li];
      AttnShape shape;
      shape.func = l.attn_func;
      shape.len = L;
      shape.block_ctx = d.len / d.blocks;
      shape.heads = d.heads;
      shape.head_dim = s / d.heads;
      shape.prime_len = d.prime_len;
      shape.enc_len = d.enc_len;

      const int keys = l.attn_func == 6 ? d.enc_len : L;
      float* rec = attn_out && int(li) == attn_layer ? attn_out + size_t(b) * L * keys : nullptr;
      layer_norm(hb, L, w, l.ln_0, x.data());
      if (l.attn_func == 6) {
        matmul(x.data(), L, w, l.c_attn.w, l.c_attn.b, qkv.data(), s, false, pool);
        matmul(encoder_kv + size_t(b) * d.enc_len * w, d.enc_len, w, l.c_enc_kv.w, l.c_enc_kv.b,
               kv.data(), 2 * s, false, pool);
        attention_forward(shape, qkv.data(), s, kv.data(), 2 * s, kv.data() + s, 2 * s, att.data(), s, pool, rec, attn_head);
      } else {
        matmul(x.data(), L, w, l.c_attn.w, l.c_attn.b, qkv.data(), 3 * s, false, pool);
        if (capture) capture(int(li), b, qkv.data(), L);
        attention_forward(shape, qkv.data(), 3 * s, qkv.data() + s, 3 * s, qkv.data() + 2 * s, 3 * s,
                          att.data(), s, pool, rec, attn_head);
      }
      matmul(att.data(), L, s, l.c_proj.w, l.c_proj.b, a.data(), w, false, pool);
      mlp_residual(l, d, L, hb, a.data(), x.data(), mid.data(), pool);
      if (record && b == 0) std::copy(hb, hb + size_t(L) * w, record + li * size_t(L) * w);
      progress.step(layer_flops);
    }
  }
}

}  // namespace jb
