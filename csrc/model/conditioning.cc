#include "conditioning.h"

#include <cmath>
#include <string>

#include "../core/error.h"

namespace jb {

void RangeEmbedding::bins_for(float start, float end, int n_time, int* out) const {
  // Mirrors RangeEmbedding.forward: float32 tensors against Python floats, which torch
  // applies as float32 scalars.
  const float lo = float(pos_min), hi = float(pos_max);
  require(lo <= start && start < hi, "ERR_INVALID_ARGUMENT",
          "timing value " + std::to_string(start) + " is outside [" + std::to_string(pos_min) + ", " +
              std::to_string(pos_max) + ")");
  if (clamp) end = std::min(std::max(end, lo), hi);
  const float span = float(pos_max - pos_min);
  for (int i = 0; i < n_time; ++i) {
    float position = start;
    if (n_time != 1) {
      const float interp = float(i) / float(n_time);
      position = start + (end - start) * interp;
    }
    const float normalised = (position - lo) / span;
    int b = int(std::floor(float(bins) * normalised));
    // The original would index out of range here; a clear error is kinder.
    require(b >= 0 && b < bins, "ERR_INVALID_ARGUMENT", "timing bin out of range");
    out[i] = b;
  }
}

void LabelConditioner::forward(const int32_t* y, int n, float* y_cond, float* x_cond) const {
  const int w = width, len = label_len();
  std::vector<float> row(w), acc(w);
  std::vector<int> abs_bins(n_time), rel_bins(n_time);
  for (int b = 0; b < n; ++b) {
    const int32_t* yb = y + size_t(b) * len;
    const int32_t artist = yb[3];
    require(artist >= 0 && artist < artist_emb.k, "ERR_INVALID_ARGUMENT",
            "artist id " + std::to_string(artist) + " is outside [0, " + std::to_string(artist_emb.k) + ")");
    // start = sum over genre slots (empty slots are -1 and masked out) + artist
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int g = 0; g < max_bow_genre_size; ++g) {
      const int32_t id = yb[4 + g];
      if (id < 0) continue;
      require(id < genre_emb.k, "ERR_INVALID_ARGUMENT",
              "genre id " + std::to_string(id) + " is outside [0, " + std::to_string(genre_emb.k) + ")");
      genre_emb.row_f32(id, row.data());
      for (int i = 0; i < w; ++i) acc[i] += row[i];
    }
    artist_emb.row_f32(artist, row.data());
    float* yc = y_cond + size_t(b) * w;
    for (int i = 0; i < w; ++i) yc[i] = acc[i] + row[i];

    if (!timing) continue;
    const float total = float(yb[0]), start = float(yb[1]), end = float(int64_t(yb[1]) + yb[2]);
    int total_bin;
    total_length.bins_for(total, total, 1, &total_bin);
    absolute_pos.bins_for(start, end, n_time, abs_bins.data());
    relative_pos.bins_for(start / total, end / total, n_time, rel_bins.data());
    std::vector<float> t_row(w), a_row(w), r_row(w);
    total_length.emb.row_f32(total_bin, t_row.data());
    for (int t = 0; t < n_time; ++t) {
      absolute_pos.emb.row_f32(abs_bins[t], a_row.data());
      relative_pos.emb.row_f32(rel_bins[t], r_row.data());
      float* xc = x_cond + (size_t(b) * n_time + t) * w;
      for (int i = 0; i < w; ++i) xc[i] = (t_row[i] + a_row[i]) + r_row[i];
    }
  }
}

std::vector<float> UpsamplerConditioner::forward(const int32_t* z, int n, int t, ThreadPool& pool,
                                                 Progress& progress, int& out_len) const {
  const int w = width;
  VQWorkspace ws;
  VQWorkspace::ensure(ws.x, stack_activation_floats(stack, n, w, t));
  // Embed (NTC) and lay out as NCT for the conv stack.
  std::vector<float> row(w);
  for (int b = 0; b < n; ++b)
    for (int i = 0; i < t; ++i) {
      const int32_t code = z[size_t(b) * t + i];
      require(code >= 0 && code < bins, "ERR_CODES",
              "upper-level code " + std::to_string(code) + " is outside [0, " + std::to_string(bins) + ")");
      x_emb.row_f32(code, row.data());
      for (int c = 0; c < w; ++c) ws.x[(size_t(b) * w + c) * t + i] = row[c];
    }
  int c = w, len = t;
  run_stack(stack, ws, n, c, len, pool, progress);
  require(c == w, "ERR_HPARAMS", "conditioner output width does not match the prior width");
  out_len = len;
  return normalise(ws.x.data(), n, len);
}

std::vector<float> UpsamplerConditioner::normalise(const float* nct, int n, int len) const {
  const int w = width;
  // NCT -> NTC, then LayerNorm over channels.
  std::vector<float> out(size_t(n) * len * w);
  for (int b = 0; b < n; ++b)
    for (int ch = 0; ch < w; ++ch)
      for (int i = 0; i < len; ++i) out[(size_t(b) * len + i) * w + ch] = nct[(size_t(b) * w + ch) * len + i];
  layer_norm(out.data(), n * len, w, ln, out.data());
  return out;
}

}  // namespace jb
