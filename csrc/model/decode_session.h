// One window of token-by-token decoding for n samples: preallocated per-layer KV caches
// (kv_cache.h), a one-pass block-sparse prefill of a known prefix, and the decode step.
// All three ways of running the prior (full forward, prefill, step) give the same logits.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "../core/buffer.h"
#include "../cpu/sampling.h"
#include "kv_cache.h"
#include "prior.h"

namespace jb {

class DecodeSession {
 public:
  // y_cond: n x w (or null: start token); x_cond: n x x_cond_len x w (len or 1) or null;
  // encoder_kv: n x enc_len x w when the model has encoder-decoder layers. Copied.
  DecodeSession(const Autoregressive& model, int n, const float* y_cond, const float* x_cond,
                int x_cond_len, const float* encoder_kv, ThreadPool& pool);

  int position() const { return pos_; }
  int samples() const { return n_; }
  size_t cache_bytes() const;

  // Runs positions [0, len) in one block-sparse pass over tokens (n rows of model.len(),
  // the first len - 1 of each read) and fills the caches. logits: null, or n x len x bins.
  void prefill(const int32_t* tokens, int len, float* logits, ThreadPool& pool, Progress& progress);
  // Position position(): input token `prev[b]` (ignored at position 0). logits: n x bins.
  void step(const int32_t* prev, float* logits, ThreadPool& pool);
  // Chunked prefill: positions [position(), end) in one pass with batched projections,
  // each query attending to the caches as they stand after its own position was added (so
  // a chunk may span blocks). tokens: n rows of model.len(). logits: null or n x chunk x bins.
  void extend(const int32_t* tokens, int end, float* logits, ThreadPool& pool);

 private:
  const Autoregressive& m_;
  int n_, pos_ = 0;
  std::vector<float> y_cond_, x_cond_, encoder_kv_;
  int x_cond_len_ = 0;
  std::vector<LayerKVCache> caches_;
  std::vector<int32_t> step_tokens_;  // n x len: step() routes its input through extend()
  // extend()'s activations, kept across steps and grown when a chunk needs more.
  struct ScratchSet {
    Buffer<float> h, x, qkv, att, a, mid, scores;
    void ensure(size_t rows, int w, int s, int mlp, int keys, int workers);  // scores: keys per worker
  };
  ScratchSet scratch_;
};

// The sampling loop of one window: tokens[b][t] for t in [start, end) are drawn (or, where
// `forced` is given, taken from it: teacher forcing), each from the logits of the step that
// reads tokens[b][t-1]. Random numbers come from Philox(seed; stream, b + sample_offset, t).
struct SampleRequest {
  int start = 0, end = 0;
  SamplingParams params;
  uint64_t seed = 0;
  uint32_t stream = 0;
  uint32_t sample_offset = 0;
  const int32_t* forced = nullptr;  // n x len, or null
  float* record_logits = nullptr;   // n x (end - start) x bins, or null
};
void sample_window(DecodeSession& s, const Autoregressive& m, int32_t* tokens, const SampleRequest& r,
                   ThreadPool& pool, Progress& progress);

}  // namespace jb
