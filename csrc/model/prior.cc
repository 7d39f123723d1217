#include "prior.h"

#include <algorithm>
#include <string>
#include <vector>

#include "../core/buffer.h"

namespace jb {

Autoregressive::Autoregressive(AutoregressiveParts parts) : parts_(std::move(parts)) {
  const TransformerDims& d = parts_.transformer->dims();
  require(parts_.x_emb.n == d.width && parts_.x_emb.k == parts_.bins && parts_.pos_emb.n == d.width &&
              parts_.pos_emb.k == d.len,
          "ERR_HPARAMS", "embedding shapes do not match the transformer (width, context, bins)");
  require(parts_.x_out.data == nullptr || (parts_.x_out.k == d.width && parts_.x_out.n == parts_.bins),
          "ERR_HPARAMS", "output projection shape does not match the transformer");
}

double Autoregressive::flops(int n) const {
  return parts_.transformer->flops(n) + (encode_only() ? 0.0 : 2.0 * n * len() * width() * bins());
}

void Autoregressive::embed(int t, int32_t prev_token, const float* y_cond_b, const float* x_cond_b,
                           int x_cond_len, float* out) const {
  const int w = width();
  // Per-thread scratch: this runs once per decoded token.
  thread_local std::vector<float> row, pos;
  if (int(row.size()) < w) {
    row.resize(w);
    pos.resize(w);
  }
  if (t == 0) {
    const float* start = y_cond_b ? y_cond_b : parts_.start_token;
    std::copy(start, start + w, row.begin());
  } else {
    parts_.x_emb.row_f32(prev_token, row.data());
  }
  parts_.pos_emb.row_f32(t, pos.data());
  const float* xc = x_cond_b ? x_cond_b + size_t(x_cond_len == 1 ? 0 : t) * w : nullptr;
  for (int i = 0; i < w; ++i) out[i] = (row[i] + pos[i]) + (xc ? xc[i] : 0.0f);
}

void Autoregressive::forward_prefix(const int32_t* tokens, int n, int L, const float* y_cond,
                                    const float* x_cond, int x_cond_len, const float* encoder_kv,
                                    float* out, ThreadPool& pool, Progress& progress, float* input,
                                    float* record, const Transformer::KVCapture& capture,
                                    int attn_layer, int attn_head, float* attn_out) const {
  const int full = len(), w = width();
  require(L > 0 && L <= full, "ERR_INVALID_ARGUMENT", "prefix longer than the context");
  require(y_cond != nullptr || parts_.start_token != nullptr, "ERR_INVALID_ARGUMENT",
          "this model is conditioned on labels: y_cond is required");
  require(x_cond == nullptr || x_cond_len == full || x_cond_len == 1, "ERR_INVALID_ARGUMENT",
          "x_cond must cover every position or be broadcast");
  for (int b = 0; b < n; ++b)
    for (int t = 0; t + 1 < L; ++t) {
      const int32_t tok = tokens[size_t(b) * full + t];
      if (!(tok >= 0 && tok < parts_.bins))  // (the message only on failure: once per token)
        fail("ERR_CODES", "token " + std::to_string(tok) + " at position " + std::to_string(t) + " is outside [0, " +
                              std::to_string(parts_.bins) + ")");
    }
  progress.total = flops(n) * L / full;
  Buffer<float> h(size_t(n) * L * w, "prior activations");
  for (int b = 0; b < n; ++b)
    for (int t = 0; t < L; ++t)
      embed(t, t > 0 ? tokens[size_t(b) * full + t - 1] : 0, y_cond ? y_cond + size_t(b) * w : nullptr,
            x_cond ? x_cond + size_t(b) * x_cond_len * w : nullptr, x_cond_len, h.data() + (size_t(b) * L + t) * w);
  if (input) std::copy(h.data(), h.data() + size_t(L) * w, input);
  parts_.transformer->forward(h.data(), n, L, encoder_kv, pool, progress, record, capture, attn_layer,
                              attn_head, attn_out);
  if (parts_.add_cond_after && x_cond) {
    for (int b = 0; b < n; ++b)
      for (int t = 0; t < L; ++t) {
        const float* xc = x_cond + (size_t(b) * x_cond_len + (x_cond_len == 1 ? 0 : t)) * w;
        float* hr = h.data() + (size_t(b) * L + t) * w;
        for (int i = 0; i < w; ++i) hr[i] += xc[i];
      }
  }
  if (encode_only()) {
    std::copy(h.data(), h.data() + size_t(n) * L * w, out);
    return;
  }
  if (!out) return;  // prefill that only fills caches
  matmul(h.data(), n * L, w, parts_.x_out, nullptr, out, parts_.bins, false, pool);
  progress.step(2.0 * n * L * w * parts_.bins);
}

void LyricEncoder::forward(const int32_t* tokens, int n, float* encoder_kv, ThreadPool& pool,
                           Progress& progress) const {
  const int L = body->len(), wl = body->width();
  Buffer<float> acts(size_t(n) * L * wl, "lyric encoder activations");
  body->forward(tokens, n, nullptr, nullptr, 0, nullptr, acts.data(), pool, progress);
  project(acts.data(), n, encoder_kv, pool);
}

void LyricEncoder::project(const float* acts, int n, float* encoder_kv, ThreadPool& pool) const {
  const int L = body->len(), wl = body->width();
  matmul(acts, n * L, wl, proj.w, proj.b, encoder_kv, out_width, false, pool);
  layer_norm(encoder_kv, n * L, out_width, ln, encoder_kv);
}

}  // namespace jb
