// A prior as the engine holds it (built from lib/prior/layout.ts's plan by the N-API layer):
// the autoregressive transformer and what conditions it, plus the native conditioning of one
// window. A window job hands in int32 rows only (labels, the upper level's codes, lyric
// tokens); the label/timing embeddings, the upsampler conditioner and the 5b lyric encoder
// run here, so n x n_ctx x width floats never cross into JS (157 MB per sample per window
// for the 5b top prior). The backends (prior_runner.h) take the result.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "conditioning.h"
#include "prior.h"

namespace jb {

struct PriorModel {
  std::unique_ptr<Autoregressive> prior;
  std::unique_ptr<LyricEncoder> lyrics;             // 5b_lyrics: separate encoder
  std::unique_ptr<LabelConditioner> labels;         // artist/genre (+ timing for the top level)
  std::unique_ptr<UpsamplerConditioner> upsampler;  // levels below the top
};

// The int32 inputs a window is conditioned on.
struct WindowConditioning {
  int n = 0;
  std::vector<int32_t> labels;  // n x label_len(): [total_length, offset, length, artist, genres]
  std::vector<int32_t> upper;   // upsamplers: n x (n_ctx / cond_downsample) codes of the level above
  std::vector<int32_t> lyrics;  // lyric encoder models: n x n_tokens lyric tokens
  // Combined lyric models (1b_lyrics): positions [0, music_offset) are lyric tokens and get
  // zero x_cond (the original's prior_preprocess); the music conditioning starts there.
  int music_offset = 0;
};

// What the transformer reads: the engine's y_cond / x_cond / encoder_kv arrays. Empty vectors
// mean absent (start token, no x_cond, no encoder).
struct ConditionedWindow {
  std::vector<float> y_cond;      // n x w
  std::vector<float> x_cond;      // n x x_cond_len x w
  int x_cond_len = 0;             // len, or 1 (broadcast)
  std::vector<float> encoder_kv;  // n x enc_len x w
  const float* y() const { return y_cond.empty() ? nullptr : y_cond.data(); }
  const float* x() const { return x_cond.empty() ? nullptr : x_cond.data(); }
  const float* enc() const { return encoder_kv.empty() ? nullptr : encoder_kv.data(); }
};

// Parts of the conditioning a backend runs itself (empty: the CPU engine runs them).
struct ConditioningHooks {
  // The upsampler conditioner's embedding and conv stack: z (n x t) -> n x w x len (NCT),
  // before its LayerNorm (UpsamplerConditioner::normalise finishes on the CPU).
  std::function<std::vector<float>(const int32_t* z, int n, int t, int& len, Progress& progress)> upsampler_stack;
  // The lyric encoder's transformer body: tokens (n x T) -> n x T x w_lyrics activations
  // (LyricEncoder::project finishes on the CPU).
  std::function<std::vector<float>(const int32_t* tokens, int n, Progress& progress)> lyric_body;
};

// Runs the conditioners (on the CPU, or through the hooks; the result is uploaded once per
// window by the CUDA runner).
ConditionedWindow condition_window(const PriorModel& m, const WindowConditioning& c, ThreadPool& pool,
                                   Progress& progress, const ConditioningHooks& hooks = {});

}  // namespace jb
