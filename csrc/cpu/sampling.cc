#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "../core/error.h"

namespace jb {

void check_sampling_params(const SamplingParams& p) {
  if (!(p.temperature > 0.0f)) fail("ERR_INVALID_ARGUMENT", "temperature must be > 0");
  if (!(p.top_k == 0 || p.top_p == 0.0f))
    fail("ERR_INVALID_ARGUMENT", "top_k and top_p cannot both be set (as in the original)");
}

void filtered_probs(const float* logits, int bins, const SamplingParams& p, std::vector<double>& probs) {
  // Runs once per sample per decoded token, on whichever pool thread draws that sample: no
  // message strings unless failing, and the scratch (also top-p's sort order, which used to
  // be allocated per call) is reused per thread.
  check_sampling_params(p);
  thread_local std::vector<float> x;
  thread_local std::vector<char> keep;
  x.resize(bins);
  for (int i = 0; i < bins; ++i) x[i] = logits[i] / p.temperature;
  keep.assign(bins, 1);
  const int k = std::min(p.top_k, bins);
  if (k > 0) {
    // Remove every logit below the k-th largest (ties with it stay, as torch.topk + <).
    thread_local std::vector<float> sorted;
    sorted.assign(x.begin(), x.begin() + bins);
    std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<float>());
    const float kth = sorted[k - 1];
    for (int i = 0; i < bins; ++i) keep[i] = !(x[i] < kth);
  }
  if (p.top_p > 0.0f) {
    // Sort descending, softmax, cumulative sum; drop tokens past top_p, but always keep
    // the first token that crosses it (the mask is shifted right by one).
    thread_local std::vector<int> order;
    order.resize(bins);
    std::iota(order.begin(), order.end(), 0);
    // Descending, ties in index order: the order a stable sort gives, from std::sort with
    // the index as tie-break (stable_sort allocates a temporary buffer on every call).
    std::sort(order.begin(), order.end(), [&](int a, int b) { return x[a] > x[b] || (!(x[b] > x[a]) && a < b); });
    const double mx = x[order[0]];
    double z = 0;
    for (int i = 0; i < bins; ++i) z += std::exp(double(x[i]) - mx);
    double cum = 0;
    bool remove_next = false;
    for (int r = 0; r < bins; ++r) {
      const int i = order[r];
      if (remove_next) keep[i] = false;
      cum += std::exp(double(x[i]) - mx) / z;
      remove_next = cum > p.top_p;
    }
  }
  double mx = -INFINITY;
  for (int i = 0; i < bins; ++i)
    if (keep[i]) mx = std::max(mx, double(x[i]));
  probs.assign(bins, 0.0);
  double sum = 0;
  for (int i = 0; i < bins; ++i)
    if (keep[i]) sum += (probs[i] = std::exp(double(x[i]) - mx));
  for (double& v : probs) v /= sum;
}

int32_t draw_token(const std::vector<double>& probs, double u) {
  double cum = 0;
  int32_t last = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] <= 0) continue;
    last = int32_t(i);
    cum += probs[i];
    if (u < cum) return int32_t(i);
  }
  return last;  // u within rounding of 1: the last token with mass
}

}  // namespace jb
