#include "prior.h"

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

void Autoregressive::forward(const int32_t* tokens, int n, const float* y_cond, const float* x_cond,
                             int x_cond_len, const float* encoder_kv, float* out, ThreadPool& pool,
                             Progress& progress, float* input, float* record) const {
  const int L = len(), w = width();
  require(y_cond != nullptr || parts_.start_token != nullptr, "ERR_INVALID_ARGUMENT",
          "this model is conditioned on labels: y_cond is required");
  require(x_cond == nullptr || x_cond_len == L || x_cond_len == 1, "ERR_INVALID_ARGUMENT",
          "x_cond must cover every position or be broadcast");
  for (size_t i = 0; i < size_t(n) * L; ++i)
    require(tokens[i] >= 0 && tokens[i] < parts_.bins, "ERR_CODES",
            "token " + std::to_string(tokens[i]) + " at index " + std::to_string(i) + " is outside [0, " +
                std::to_string(parts_.bins) + ")");
  progress.total = flops(n);
  Buffer<float> h(size_t(n) * L * w, "prior activations");
  std::vector<float> row(w), pos(w);
  for (int b = 0; b < n; ++b)
    for (int t = 0; t < L; ++t) {
      // Shift right: position t sees token t-1; position 0 the start (artist/genre) embedding.
      if (t == 0) {
        const float* start = y_cond ? y_cond + size_t(b) * w : parts_.start_token;
        std::copy(start, start + w, row.begin());
      } else {
        parts_.x_emb.row_f32(tokens[size_t(b) * L + t - 1], row.data());
      }
      parts_.pos_emb.row_f32(t, pos.data());
      float* hr = h.data() + (size_t(b) * L + t) * w;
      const float* xc = x_cond ? x_cond + (size_t(b) * x_cond_len + (x_cond_len == 1 ? 0 : t)) * w : nullptr;
      for (int i = 0; i < w; ++i) hr[i] = (row[i] + pos[i]) + (xc ? xc[i] : 0.0f);
    }
  if (input) std::copy(h.data(), h.data() + size_t(L) * w, input);
  parts_.transformer->forward(h.data(), n, encoder_kv, pool, progress, record);
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
  matmul(h.data(), n * L, w, parts_.x_out, nullptr, out, parts_.bins, false, pool);
  progress.step(2.0 * n * L * w * parts_.bins);
}

void LyricEncoder::forward(const int32_t* tokens, int n, float* encoder_kv, ThreadPool& pool,
                           Progress& progress) const {
  const int L = body->len(), wl = body->width();
  Buffer<float> acts(size_t(n) * L * wl, "lyric encoder activations");
  body->forward(tokens, n, nullptr, nullptr, 0, nullptr, acts.data(), pool, progress);
  matmul(acts.data(), n * L, wl, proj.w, proj.b, encoder_kv, out_width, false, pool);
  layer_norm(encoder_kv, n * L, out_width, ln, encoder_kv);
}

}  // namespace jb
