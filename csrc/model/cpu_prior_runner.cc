// The CPU implementation of PriorRunner: DecodeSession + sample_window, the engine itself.
#include <algorithm>
#include <string>

#include "decode_session.h"
#include "prior_runner.h"

namespace jb {

void check_window_job(const Autoregressive& m, const WindowJob& job) {
  const int L = m.len();
  require(job.n > 0 && 0 <= job.prefix && job.prefix <= job.end && job.end <= L, "ERR_INVALID_ARGUMENT",
          "need 0 <= prefix <= end <= " + std::to_string(L));
  require(job.tokens.size() == size_t(job.n) * L, "ERR_INVALID_ARGUMENT", "tokens must be n x context");
  require(job.forced.empty() || job.forced.size() == size_t(job.n) * L, "ERR_INVALID_ARGUMENT", "forced must be n x context");
  require(job.prefill_chunk >= 0, "ERR_INVALID_ARGUMENT", "prefill chunk must be >= 0");
  require(!m.encode_only(), "ERR_MODEL_KIND", "an encoder body has no output projection to sample from");
}

namespace {

class CpuPriorRunner final : public PriorRunner {
 public:
  explicit CpuPriorRunner(const Autoregressive& m) : m_(m) {}
  const char* backend() const override { return "cpu"; }
  std::string describe() const override { return "CPU engine"; }

  WindowResult sample(const ConditionedWindow& c, const WindowJob& job, Progress& progress) override {
    check_window_job(m_, job);
    ThreadPool& pool = ThreadPool::global();
    const int n = job.n, bins = m_.bins(), prefix = job.prefix, end = job.end;
    WindowResult r;
    r.tokens = job.tokens;
    DecodeSession session(m_, n, c.y(), c.x(), c.x_cond_len, c.enc(), pool);
    if (job.record_prefix_logits) r.prefix_logits.resize(size_t(n) * prefix * bins);
    if (prefix > 0 && job.prefill_chunk <= 0) {
      Progress quiet;
      quiet.cancelled = progress.cancelled;
      session.prefill(r.tokens.data(), prefix, job.record_prefix_logits ? r.prefix_logits.data() : nullptr, pool, quiet);
    } else if (prefix > 0) {
      // Chunked prefill (bounded memory): chunks of `prefill_chunk` positions.
      const int chunk = job.prefill_chunk;
      std::vector<float> part;
      for (int a = 0; a < prefix; a += chunk) {
        const int e = std::min(prefix, a + chunk);
        part.resize(job.record_prefix_logits ? size_t(n) * (e - a) * bins : 0);
        session.extend(r.tokens.data(), e, job.record_prefix_logits ? part.data() : nullptr, pool);
        for (int b = 0; job.record_prefix_logits && b < n; ++b)
          std::copy(part.begin() + size_t(b) * (e - a) * bins, part.begin() + size_t(b + 1) * (e - a) * bins,
                    r.prefix_logits.begin() + (size_t(b) * prefix + a) * bins);
        progress.check();
      }
    }
    if (job.record_logits) r.logits.resize(size_t(n) * (end - prefix) * bins);
    SampleRequest req;
    req.start = prefix;
    req.end = end;
    req.params = job.params;
    req.seed = job.seed;
    req.stream = job.stream;
    req.sample_offset = job.sample_offset;
    req.forced = job.forced.empty() ? nullptr : job.forced.data();
    req.record_logits = job.record_logits ? r.logits.data() : nullptr;
    sample_window(session, m_, r.tokens.data(), req, pool, progress);
    return r;
  }

  std::vector<float> forward(const ConditionedWindow& c, const int32_t* tokens, int n, Progress& progress) override {
    std::vector<float> out(size_t(n) * m_.len() * (m_.encode_only() ? m_.width() : m_.bins()));
    m_.forward(tokens, n, c.y(), c.x(), c.x_cond_len, c.enc(), out.data(), ThreadPool::global(), progress);
    return out;
  }

  std::vector<float> attention(const ConditionedWindow& c, const int32_t* tokens, int n, int layer, int head,
                               Progress& progress) override {
    const Transformer& t = m_.transformer();
    require(layer >= 0 && layer < t.depth() && head >= 0 && head < t.dims().heads, "ERR_INVALID_ARGUMENT",
            "attention layer/head out of range");
    const int keys = t.layer(layer).attn_func == 6 ? t.dims().enc_len : m_.len();
    std::vector<float> probs(size_t(n) * m_.len() * keys);
    m_.forward_prefix(tokens, n, m_.len(), c.y(), c.x(), c.x_cond_len, c.enc(), nullptr, ThreadPool::global(), progress,
                      nullptr, nullptr, nullptr, layer, head, probs.data());
    return probs;
  }

 private:
  const Autoregressive& m_;
};

}  // namespace

std::unique_ptr<PriorRunner> make_cpu_prior_runner(const Autoregressive& model) {
  return std::make_unique<CpuPriorRunner>(model);
}

}  // namespace jb
