// Drawing a token from logits as the original does (jukebox/transformer/ops.py
// filter_logits, then Categorical): divide by the temperature, keep the top-k logits or
// the nucleus of cumulative probability top_p (never both), and draw with a uniform from
// the counter-based RNG by inverting the CDF in index order.
#pragma once
#include <cstdint>
#include <vector>

namespace jb {

struct SamplingParams {
  float temperature = 1.0f;
  int top_k = 0;       // 0: off
  float top_p = 0.0f;  // 0: off
};

// Throws ERR_INVALID_ARGUMENT for a temperature <= 0 or top_k and top_p both set.
void check_sampling_params(const SamplingParams& p);
// Probabilities (sum 1, in double) after temperature and filtering; zero for removed tokens.
// Safe to call from several threads at once (per-thread scratch); a result depends only on
// the logits and p, never on the thread.
void filtered_probs(const float* logits, int bins, const SamplingParams& p, std::vector<double>& probs);
// The token the uniform u in [0, 1) selects.
int32_t draw_token(const std::vector<double>& probs, double u);

}  // namespace jb
