#include "decode_session.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "../core/philox.h"
#include "../cpu/attention.h"
#include "../cpu/vec.h"

namespace jb {

namespace {

// One query against a contiguous run of cached keys/values, head h only (same arithmetic
// as attention_forward). out: the query's state-wide output row; w: scratch for run.count
// scores.
void attend_head(const float* q, const LayerKVCache::Run& run, int state, int heads, int h, float* out, float* w) {
  const int dh = state / heads;
  float* oh = out + h * dh;
  if (run.zero_output || run.count == 0) {
    std::fill(oh, oh + dh, 0.0f);
    return;
  }
  const double sc = 1.0 / std::sqrt(std::sqrt(double(dh)));
  const float scale = float(sc * sc);
  const DotFn dot = active_dot();
  const AxpyFn axpy = active_axpy();
  const float* qh = q + h * dh;
  float mx = -INFINITY;
  for (int j = 0; j < run.count; ++j) {
    w[j] = dot(qh, run.k + size_t(j) * state + h * dh, dh) * scale;
    mx = std::max(mx, w[j]);
  }
  float sum = 0.0f;
  for (int j = 0; j < run.count; ++j) sum += (w[j] = std::exp(w[j] - mx));
  const float inv = 1.0f / sum;
  std::fill(oh, oh + dh, 0.0f);
  for (int j = 0; j < run.count; ++j) axpy(w[j] * inv, run.v + size_t(j) * state + h * dh, oh, dh);
}

// Time of one cached key/value row for one query, in the pool's FLOP-equivalents
// (thread_pool.h): the row is streamed from memory (2 x state fp32 = 8 bytes per state
// element, about what a fp16 GEMV does with 8 FLOPs' worth of bytes), plus an exp per head.
double attention_row_cost(int state, int heads) { return 8.0 * state + 16.0 * heads; }

// One sample's sampling work, in the same units: an exp and a division per bin in double
// (measured ~10 ns per bin on Zen 4 = ~300 FLOP-equivalents), more with top-k (a selection)
// or top-p (a sort and a second exp pass).
double sampling_cost(int bins, const SamplingParams& p) {
  double per_bin = 300.0;
  if (p.top_k > 0) per_bin += 50.0;
  if (p.top_p > 0.0f) per_bin += 300.0 + 20.0 * std::log2(double(std::max(2, bins)));
  return per_bin * bins;
}

}  // namespace

DecodeSession::DecodeSession(const Autoregressive& model, int n, const float* y_cond, const float* x_cond,
                             int x_cond_len, const float* encoder_kv, ThreadPool& pool)
    : m_(model), n_(n), x_cond_len_(x_cond ? x_cond_len : 0) {
  const Transformer& t = m_.transformer();
  const TransformerDims& d = t.dims();
  const int w = d.width, s = d.state, L = d.len;
  require(n > 0, "ERR_INVALID_ARGUMENT", "a decode session needs at least one sample");
  require(y_cond != nullptr || m_.parts().start_token != nullptr, "ERR_INVALID_ARGUMENT",
          "this model is conditioned on labels: y_cond is required");
  require(!t.needs_encoder() || encoder_kv != nullptr, "ERR_INVALID_ARGUMENT",
          "this model attends to the lyric encoder: encoder_kv is required");
  require(x_cond == nullptr || x_cond_len == L || x_cond_len == 1, "ERR_INVALID_ARGUMENT",
          "x_cond must cover every position or be broadcast");
  if (y_cond) y_cond_.assign(y_cond, y_cond + size_t(n) * w);
  if (x_cond) x_cond_.assign(x_cond, x_cond + size_t(n) * x_cond_len * w);
  if (t.needs_encoder()) encoder_kv_.assign(encoder_kv, encoder_kv + size_t(n) * d.enc_len * w);
  for (int li = 0; li < t.depth(); ++li) {
    const TransformerLayer& l = t.layer(li);
    caches_.emplace_back(l.attn_func, n, s, L, L / d.blocks, d.prime_len, d.enc_len);
    if (l.attn_func == 6) {
      // The encoder's keys/values are projected once per window.
      std::vector<float> kv(size_t(d.enc_len) * 2 * s);
      for (int b = 0; b < n; ++b) {
        matmul(encoder_kv + size_t(b) * d.enc_len * w, d.enc_len, w, l.c_enc_kv.w, l.c_enc_kv.b, kv.data(), 2 * s, false, pool);
        for (int j = 0; j < d.enc_len; ++j) {
          std::copy(kv.data() + size_t(j) * 2 * s, kv.data() + size_t(j) * 2 * s + s, caches_.back().enc_k(b) + size_t(j) * s);
          std::copy(kv.data() + size_t(j) * 2 * s + s, kv.data() + size_t(j + 1) * 2 * s, caches_.back().enc_v(b) + size_t(j) * s);
        }
      }
    }
  }
  step_tokens_.assign(size_t(n) * L, 0);
}

void DecodeSession::ScratchSet::ensure(size_t rows, int w, int s, int mlp, int keys, int workers) {
  auto grow = [](Buffer<float>& b, size_t n) {
    if (b.size() < n) b.reset(n, "chunk state");
  };
  grow(h, rows * w);
  grow(x, rows * w);
  grow(qkv, rows * 3 * s);
  grow(att, rows * s);
  grow(a, rows * w);
  grow(mid, rows * mlp);
  grow(scores, size_t(keys) * size_t(std::max(workers, 1)));
}

size_t DecodeSession::cache_bytes() const {
  size_t b = 0;
  for (const auto& c : caches_) b += c.bytes();
  return b;
}

void DecodeSession::prefill(const int32_t* tokens, int len, float* logits, ThreadPool& pool, Progress& progress) {
  require(pos_ == 0, "ERR_INVALID_ARGUMENT", "prefill must come first in a session");
  const int s = m_.transformer().dims().state;
  m_.forward_prefix(tokens, n_, len, y_cond_.empty() ? nullptr : y_cond_.data(),
                    x_cond_.empty() ? nullptr : x_cond_.data(), x_cond_len_,
                    encoder_kv_.empty() ? nullptr : encoder_kv_.data(), logits, pool, progress,
                    nullptr, nullptr, [&](int layer, int b, const float* qkv, int rows) {
                      LayerKVCache& c = caches_[layer];
                      for (int p = 0; p < rows; ++p)
                        c.put(b, p, qkv + size_t(p) * 3 * s + s, qkv + size_t(p) * 3 * s + 2 * s);
                    });
  pos_ = len;
}

void DecodeSession::step(const int32_t* prev, float* logits, ThreadPool& pool) {
  const int L = m_.len();
  if (pos_ >= L) fail("ERR_INVALID_ARGUMENT", "the window is full");
  if (pos_ > 0)
    for (int b = 0; b < n_; ++b) step_tokens_[size_t(b) * L + pos_ - 1] = prev[b];
  extend(step_tokens_.data(), pos_ + 1, logits, pool);
}

void DecodeSession::extend(const int32_t* tokens, int end, float* logits, ThreadPool& pool) {
  const Transformer& t = m_.transformer();
  const TransformerDims& d = t.dims();
  const int w = d.width, s = d.state, n = n_, Lm = d.len;
  const int c = end - pos_;
  // (Messages are built only on failure: this runs once per decoded token.)
  if (!(c > 0 && end <= Lm))
    fail("ERR_INVALID_ARGUMENT", "bad chunk [" + std::to_string(pos_) + ", " + std::to_string(end) + ")");
  const size_t rows = size_t(n) * c;
  // Scratch kept across steps (a step used to allocate six buffers).
  ScratchSet& sc = scratch_;
  const int max_keys = std::max(Lm, d.enc_len);
  sc.ensure(rows, w, s, d.mlp, max_keys, pool.size());
  float* const h = sc.h.data();
  float* const x = sc.x.data();
  float* const qkv = sc.qkv.data();
  float* const att = sc.att.data();
  float* const a = sc.a.data();
  float* const mid = sc.mid.data();
  // rows are (sample, position in chunk)
  for (int b = 0; b < n; ++b)
    for (int i = 0; i < c; ++i) {
      const int p = pos_ + i;
      const int32_t prev = p > 0 ? tokens[size_t(b) * Lm + p - 1] : 0;
      if (!(p == 0 || (prev >= 0 && prev < m_.bins()))) fail("ERR_CODES", "token " + std::to_string(prev) + " is out of range");
      m_.embed(p, prev, y_cond_.empty() ? nullptr : y_cond_.data() + size_t(b) * w,
               x_cond_.empty() ? nullptr : x_cond_.data() + size_t(b) * x_cond_len_ * w, x_cond_len_,
               h + (size_t(b) * c + i) * w);
    }
  for (int li = 0; li < t.depth(); ++li) {
    const TransformerLayer& l = t.layer(li);
    LayerKVCache& cache = caches_[li];
    layer_norm(h, int(rows), w, l.ln_0, x);
    const bool enc = l.attn_func == 6;
    const int ld = enc ? s : 3 * s;
    matmul(x, int(rows), w, l.c_attn.w, l.c_attn.b, qkv, ld, false, pool);
    // KV puts and attention, the samples (or, for one position of few samples, their heads)
    // in parallel: a task reads only its own sample's cache and writes its own slice of att,
    // so the split changes no arithmetic. A sample's positions stay in order within its task
    // (put i, attend i, put i + 1, ...): a chunk that crosses a block boundary overwrites
    // row/previous-block rows that an earlier query of the chunk still reads.
    double keys_read = 0;  // per sample (every sample reads the same number of rows)
    for (int i = 0; i < c; ++i) {
      const LayerKVCache::Run r = cache.keys_for(0, pos_ + i);
      keys_read += r.zero_output ? 0 : r.count;
    }
    const double cost = double(n) * keys_read * attention_row_cost(s, d.heads);
    float* const scores = sc.scores.data();
    if (c > 1 || d.heads == 1 || n >= pool.size()) {
      // One task per sample (its put inside it): enough tasks for every thread, or no heads
      // to split.
      pool.parallel_for(n, cost, [&](int b, int worker) {
        float* wk = scores + size_t(worker) * max_keys;
        for (int i = 0; i < c; ++i) {
          const float* q = qkv + (size_t(b) * c + i) * ld;
          if (!enc) cache.put(b, pos_ + i, q + s, q + 2 * s);
          const LayerKVCache::Run r = cache.keys_for(b, pos_ + i);
          for (int hd = 0; hd < d.heads; ++hd) attend_head(q, r, s, d.heads, hd, att + (size_t(b) * c + i) * s, wk);
        }
      });
    } else {
      // One position of fewer samples than threads: (sample, head) tasks, the puts first
      // (every head of a sample reads its new row).
      if (!enc)
        for (int b = 0; b < n; ++b) {
          const float* q = qkv + size_t(b) * ld;
          cache.put(b, pos_, q + s, q + 2 * s);
        }
      pool.parallel_for(n * d.heads, cost, [&](int task, int worker) {
        const int b = task / d.heads, hd = task % d.heads;
        attend_head(qkv + size_t(b) * ld, cache.keys_for(b, pos_), s, d.heads, hd, att + size_t(b) * s,
                    scores + size_t(worker) * max_keys);
      });
    }
    matmul(att, int(rows), s, l.c_proj.w, l.c_proj.b, a, w, false, pool);
    mlp_residual(l, d, int(rows), h, a, x, mid, pool);
  }
  if (logits) {
    if (m_.parts().add_cond_after && !x_cond_.empty()) {
      for (int b = 0; b < n; ++b)
        for (int i = 0; i < c; ++i) {
          const float* xc = x_cond_.data() + (size_t(b) * x_cond_len_ + (x_cond_len_ == 1 ? 0 : pos_ + i)) * w;
          float* hr = h + (size_t(b) * c + i) * w;
          for (int k = 0; k < w; ++k) hr[k] += xc[k];
        }
    }
    matmul(h, int(rows), w, m_.parts().x_out, nullptr, logits, m_.bins(), false, pool);
  }
  pos_ = end;
}

void sample_window(DecodeSession& s, const Autoregressive& m, int32_t* tokens, const SampleRequest& r,
                   ThreadPool& pool, Progress& progress) {
  const int n = s.samples(), L = m.len(), bins = m.bins();
  require(0 <= r.start && r.start <= r.end && r.end <= L, "ERR_INVALID_ARGUMENT", "bad sampling range");
  require(s.position() == r.start, "ERR_INVALID_ARGUMENT",
          "session is at position " + std::to_string(s.position()) + ", sampling starts at " + std::to_string(r.start));
  // Checked once here, so the per-sample tasks below never throw on bad parameters.
  if (!r.forced) check_sampling_params(r.params);
  // Per-window buffers: a step allocates nothing (probs keeps its capacity across steps).
  std::vector<float> logits(size_t(n) * bins);
  std::vector<int32_t> prev(n, 0);
  std::vector<std::vector<double>> probs(n);
  const double cost = r.forced ? 0.0 : double(n) * sampling_cost(bins, r.params);
  progress.total = r.end - r.start;
  for (int t = r.start; t < r.end; ++t) {
    for (int b = 0; b < n; ++b) prev[b] = t > 0 ? tokens[size_t(b) * L + t - 1] : 0;
    s.step(prev.data(), logits.data(), pool);
    // The n samples' draws in parallel: sample b's token depends only on its own logits and
    // its own Philox uniform (b + sample_offset, t), so the split cannot change a token.
    pool.parallel_for(n, cost, [&](int b, int) {
      const float* lb = logits.data() + size_t(b) * bins;
      if (r.record_logits) std::copy(lb, lb + bins, r.record_logits + (size_t(b) * (r.end - r.start) + (t - r.start)) * bins);
      if (r.forced) {
        tokens[size_t(b) * L + t] = r.forced[size_t(b) * L + t];
        return;
      }
      filtered_probs(lb, bins, r.params, probs[b]);
      const double u = Philox4x32::uniform(r.seed, r.stream, uint32_t(b) + r.sample_offset, uint32_t(t), 0x6a6b7878u);
      tokens[size_t(b) * L + t] = draw_token(probs[b], u);
    });
    progress.step(1);
  }
}

}  // namespace jb
