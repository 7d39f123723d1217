#include "prior_model.h"

#include <algorithm>
#include <string>

namespace jb {

ConditionedWindow condition_window(const PriorModel& m, const WindowConditioning& c, ThreadPool& pool,
                                   Progress& progress, const ConditioningHooks& hooks) {
  const Autoregressive& p = *m.prior;
  const int n = c.n, w = p.width(), L = p.len();
  require(n > 0, "ERR_INVALID_ARGUMENT", "a window needs at least one sample");
  ConditionedWindow out;
  std::vector<float> timing;
  int n_time = 0;
  if (m.labels) {
    const LabelConditioner& lc = *m.labels;
    require(c.labels.size() == size_t(n) * lc.label_len(), "ERR_INVALID_ARGUMENT",
            "expected " + std::to_string(n) + " label rows of " + std::to_string(lc.label_len()) + " values, got " +
                std::to_string(c.labels.size()) + " values");
    out.y_cond.resize(size_t(n) * w);
    if (lc.timing) {
      n_time = lc.n_time;
      timing.resize(size_t(n) * n_time * w);
    }
    lc.forward(c.labels.data(), n, out.y_cond.data(), lc.timing ? timing.data() : nullptr);
  } else {
    require(c.labels.empty(), "ERR_MODEL_KIND", "this prior has no label conditioner: pass no labels");
  }
  if (m.upsampler) {
    require(!c.upper.empty() && c.upper.size() % size_t(n) == 0, "ERR_INVALID_ARGUMENT",
            "an upsampler window needs the codes of the level above for each of its " + std::to_string(n) + " samples");
    int len = 0;
    const int t = int(c.upper.size() / n);
    if (hooks.upsampler_stack) {
      const std::vector<float> nct = hooks.upsampler_stack(c.upper.data(), n, t, len, progress);
      timing = m.upsampler->normalise(nct.data(), n, len);
    } else {
      timing = m.upsampler->forward(c.upper.data(), n, t, pool, progress, len);
    }
    n_time = len;
  } else {
    require(c.upper.empty(), "ERR_MODEL_KIND", "this prior is not an upsampler: pass no upper-level codes");
  }
  if (!timing.empty()) {
    const int off = c.music_offset;
    require(off >= 0 && off + n_time <= L, "ERR_INVALID_ARGUMENT",
            "conditioning of " + std::to_string(n_time) + " positions from " + std::to_string(off) +
                " does not fit the context of " + std::to_string(L));
    if (off == 0 && n_time == L) {
      out.x_cond = std::move(timing);
    } else {
      // x_cond covers the music positions; the lyric positions (and any tail) get zeros.
      out.x_cond.assign(size_t(n) * L * w, 0.0f);
      for (int b = 0; b < n; ++b)
        std::copy(timing.begin() + size_t(b) * n_time * w, timing.begin() + size_t(b + 1) * n_time * w,
                  out.x_cond.begin() + (size_t(b) * L + off) * w);
    }
    out.x_cond_len = L;
  }
  if (m.lyrics) {
    const LyricEncoder& e = *m.lyrics;
    const int T = e.body->len();
    require(c.lyrics.size() == size_t(n) * T, "ERR_INVALID_ARGUMENT",
            "expected " + std::to_string(n) + " rows of " + std::to_string(T) + " lyric tokens, got " +
                std::to_string(c.lyrics.size()) + " values");
    out.encoder_kv.resize(size_t(n) * T * e.out_width);
    if (hooks.lyric_body) {
      const std::vector<float> acts = hooks.lyric_body(c.lyrics.data(), n, progress);
      e.project(acts.data(), n, out.encoder_kv.data(), pool);
    } else {
      e.forward(c.lyrics.data(), n, out.encoder_kv.data(), pool, progress);
    }
  } else {
    require(c.lyrics.empty(), "ERR_MODEL_KIND", "this prior has no lyric encoder: pass no lyric tokens (a combined lyric model reads them from its tokens)");
  }
  return out;
}

}  // namespace jb
