// The seam between the engine and a compute backend, at model level (DESIGN.md "Backends"):
// a PriorRunner runs whole windows of one prior — sample (prefill the known prefix, then
// draw or teacher-force the rest), a full forward (score), one head's attention rows (lyric
// alignment). The CPU runner is the engine in csrc/model; the CUDA runner
// (csrc/backend/cuda_prior_runner.h) drives the CUDA library's model ABI. Both take the same
// conditioned window and give the same tokens for the same seed.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../cpu/sampling.h"
#include "prior_model.h"

namespace jb {

struct WindowJob {
  int n = 0;
  std::vector<int32_t> tokens;  // n x len: positions < prefix are the known prefix
  int prefix = 0, end = 0;      // sample [prefix, end)
  int prefill_chunk = 0;        // 0: the prefix in one pass
  SamplingParams params;
  uint64_t seed = 0;
  uint32_t stream = 0, sample_offset = 0;
  std::vector<int32_t> forced;  // n x len teacher-forced tokens, or empty
  bool record_logits = false, record_prefix_logits = false;
};

struct WindowResult {
  std::vector<int32_t> tokens;      // n x len
  std::vector<float> logits;        // n x (end - prefix) x bins when recorded
  std::vector<float> prefix_logits; // n x prefix x bins when recorded
};

class PriorRunner {
 public:
  virtual ~PriorRunner() = default;
  // "cpu", or "cuda" (the device's name is in describe()).
  virtual const char* backend() const = 0;
  virtual std::string describe() const = 0;
  // Device memory the model holds now (weights, caches, scratch); 0 on the CPU.
  virtual uint64_t device_bytes() const { return 0; }
  // The conditioning this backend runs itself (the CPU runner: none).
  virtual ConditioningHooks conditioning_hooks() { return {}; }
  virtual WindowResult sample(const ConditionedWindow& c, const WindowJob& job, Progress& progress) = 0;
  // tokens: n x len. Logits n x len x bins (activations n x len x w for an encoder body).
  virtual std::vector<float> forward(const ConditionedWindow& c, const int32_t* tokens, int n, Progress& progress) = 0;
  // One head's attention probabilities in a full forward: n x len x keys.
  virtual std::vector<float> attention(const ConditionedWindow& c, const int32_t* tokens, int n, int layer, int head,
                                       Progress& progress) = 0;
};

std::unique_ptr<PriorRunner> make_cpu_prior_runner(const Autoregressive& model);

// Checks a job against the model (shared by the runners, so both refuse the same inputs).
void check_window_job(const Autoregressive& m, const WindowJob& job);

}  // namespace jb
