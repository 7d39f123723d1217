#include "vq.h"

#include <algorithm>
#include <limits>

#include "cpu_features.h"
#include "kernels_avx512.h"

namespace jb {

Codebook::Codebook(const float* k, int bins, int width) : bins_(bins), width_(width) {
  require(bins > 0 && width > 0, "ERR_HPARAMS", "codebook must have bins > 0 and width > 0");
  k_.reset(size_t(bins) * width, "codebook");
  norm_.reset(bins, "codebook norms");
  packed_.reset(size_t(blocks8()) * width * 8, "packed codebook");
  packed_.zero();
  for (int j = 0; j < bins; ++j) {
    float s = 0;
    for (int d = 0; d < width; ++d) {
      const float v = k[size_t(j) * width + d];
      k_[size_t(j) * width + d] = v;
      s += v * v;
      packed_[(size_t(j / 8) * width + d) * 8 + j % 8] = v;
    }
    norm_[j] = s;
  }
}

static float squared_norm(const float* x, int width) {
  float s = 0;
  for (int d = 0; d < width; ++d) s += x[d] * x[d];
  return s;
}

void vq_nearest_ref(const Codebook& cb, const float* x, int n, int32_t* out) {
  const int w = cb.width();
  for (int i = 0; i < n; ++i) {
    const float* xi = x + size_t(i) * w;
    const float xx = squared_norm(xi, w);
    float best = std::numeric_limits<float>::infinity();
    int32_t arg = 0;
    for (int j = 0; j < cb.bins(); ++j) {
      const float* kj = cb.row(j);
      float dot = 0;
      for (int d = 0; d < w; ++d) dot += xi[d] * kj[d];
      const float dist = (xx - 2.0f * dot) + cb.norms()[j];
      if (dist < best) {  // strict: the first index wins ties
        best = dist;
        arg = j;
      }
    }
    out[i] = arg;
  }
}

void vq_rows_generic(const Codebook& cb, const float* x, int r0, int r1, int32_t* out) {
  const int w = cb.width();
  float dot[8];
  for (int i = r0; i < r1; ++i) {
    const float* xi = x + size_t(i) * w;
    const float xx = squared_norm(xi, w);
    float best = std::numeric_limits<float>::infinity();
    int32_t arg = 0;
    for (int blk = 0; blk < cb.blocks8(); ++blk) {
      const float* kb = cb.packed() + size_t(blk) * w * 8;
      for (int l = 0; l < 8; ++l) dot[l] = 0;
      for (int d = 0; d < w; ++d)
        for (int l = 0; l < 8; ++l) dot[l] += xi[d] * kb[d * 8 + l];
      const int lanes = std::min(8, cb.bins() - blk * 8);
      for (int l = 0; l < lanes; ++l) {
        const float dist = (xx - 2.0f * dot[l]) + cb.norms()[blk * 8 + l];
        if (dist < best) {
          best = dist;
          arg = blk * 8 + l;
        }
      }
    }
    out[i] = arg;
  }
}

void vq_nearest(const Codebook& cb, const float* x, int n, int32_t* out, ThreadPool& pool) {
  constexpr int kRowsPerTask = 64;
  using Rows = void (*)(const Codebook&, const float*, int, int, int32_t*);
  const Isa isa = active_isa();
  const Rows rows = isa == Isa::Avx512 ? avx512_kernels()->vq_rows : isa == Isa::Avx2Fma ? vq_rows_avx2 : vq_rows_generic;
  const int tasks = (n + kRowsPerTask - 1) / kRowsPerTask;
  pool.parallel_for(tasks, 2.0 * n * cb.blocks8() * 8 * cb.width(), [&](int t, int) {
    const int r0 = t * kRowsPerTask, r1 = std::min(n, r0 + kRowsPerTask);
    rows(cb, x, r0, r1, out);
  });
}

}  // namespace jb
