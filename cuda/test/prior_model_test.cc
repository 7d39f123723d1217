// The prior path of the CUDA backend end to end, through the C ABI as the addon will drive it
// (dlopen of the library given as argv[1]), against the CPU engine built into this program
// (csrc/model: Autoregressive, DecodeSession, sample_window): random small priors with every
// attention type mixed per layer, fp32 / fp16 / bf16 weights, one and several heads,
// add_cond_after on and off, x_cond full / broadcast / none, y_cond or the start token, the
// lyric encoder's keys, n = 1..3, res_scale != 1; checks
//  - prior_window with fp32 KV caches: the CPU's sample_window tokens exactly (temperature,
//    top-k, top-p), the step logits within 1e-5 relative, the prefix logits (one pass and
//    chunked: equal bit for bit), teacher-forced tokens;
//  - prior_forward logits / activations vs Autoregressive::forward, one head's attention
//    probabilities vs forward_prefix's attn_out;
//  - fp16 KV caches within a looser tolerance (printed);
//  - abort through the progress callback (ERR_ABORTED, and the model still works after);
//  - prior_free gives the memory back; out of memory at create names the model and the bytes.
// Usage: jukebox-cuda-prior-test path/to/libjukebox-cuda.so [--bench] [--oom-only]
//   --bench     also time one 512-token window of a width-256, 6-layer model (the default
//               model's size) and print the seconds
//   --oom-only  only the out-of-memory case (run with a small JUKEBOX_CUDA_EMU_MEMORY)
// Prints one line per case and "ok N checks"; exits 1 on the first failure.
#include <dlfcn.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "../../common/half_convert.h"
#include "../include/jukebox_cuda.h"
#include "check.h"
#include "core/progress.h"
#include "core/thread_pool.h"
#include "model/decode_session.h"
#include "model/prior.h"

namespace {

const jb_cuda_api* api = nullptr;
jb_cuda_context* ctx = nullptr;

#define API_OK(call) CHECK((call) == JB_CUDA_OK, "%s: %s", #call, api->last_error())

std::mt19937 rng(1234);
float nrand() { return std::normal_distribution<float>(0.0f, 1.0f)(rng); }

uint16_t to_bf16(float f) {  // round to nearest even
  const uint32_t u = jb::gpu::f32_bits(f);
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// A weight matrix in one of the three dtypes, shared by both engines (same bits).
struct HostMat {
  int dtype = JB_CUDA_DTYPE_F32, k = 0, n = 0;
  bool trans = false;
  std::vector<float> f;
  std::vector<uint16_t> h;
  void init(int dt, int k_, int n_, bool t, float scale) {
    dtype = dt;
    k = k_;
    n = n_;
    trans = t;
    const size_t count = size_t(k) * n;
    if (dt == JB_CUDA_DTYPE_F32) {
      f.resize(count);
      for (auto& v : f) v = nrand() * scale;
    } else {
      h.resize(count);
      for (auto& v : h) v = dt == JB_CUDA_DTYPE_F16 ? jb::gpu::float_to_half_rne(nrand() * scale) : to_bf16(nrand() * scale);
    }
  }
  const void* data() const { return dtype == JB_CUDA_DTYPE_F32 ? static_cast<const void*>(f.data()) : h.data(); }
  jb::WeightView view() const {
    jb::WeightView v;
    v.data = data();
    v.dtype = dtype == JB_CUDA_DTYPE_F32 ? jb::DType::F32 : dtype == JB_CUDA_DTYPE_F16 ? jb::DType::F16 : jb::DType::BF16;
    v.k = k;
    v.n = n;
    v.transposed = trans;
    return v;
  }
  jb_cuda_matrix abi() const {
    jb_cuda_matrix m;
    m.data = data();
    m.dtype = dtype;
    m.k = k;
    m.n = n;
    m.transposed = trans ? 1 : 0;
    return m;
  }
};

std::vector<float> randv(size_t n, float scale, float offset = 0.0f) {
  std::vector<float> v(n);
  for (auto& x : v) x = offset + nrand() * scale;
  return v;
}

struct Spec {
  const char* name = "prior";
  int w = 40, s = 24, mlp = 56, heads = 2, len = 64, blocks = 8, prime = 20, enc = 11, bins = 37;
  std::vector<int> funcs{0, 1, 2, 3, 6, 7};
  int dtype = JB_CUDA_DTYPE_F32;
  bool add_cond_after = true;
  float res_scale = 1.0f;
  bool start = true;
  bool encode_only = false;
  int max_n = 3;
};

struct Layer {
  std::vector<float> ln0_w, ln0_b, ln1_w, ln1_b, b_attn, b_enc, b_proj, b_fc, b_mproj;
  HostMat c_attn, c_enc_kv, c_proj, fc, proj;
};

// One random prior, as the CPU engine's Autoregressive and as a jb_cuda_prior_desc.
struct Model {
  Spec sp;
  std::vector<Layer> layers;
  HostMat x_emb, pos_emb, x_out;
  std::vector<float> start;
  std::unique_ptr<jb::Autoregressive> cpu;
  std::vector<jb_cuda_layer_desc> ldesc;
  jb_cuda_prior_desc desc;

  explicit Model(const Spec& s) : sp(s) {
    const int w = s.w, st = s.s;
    layers.resize(s.funcs.size());
    std::vector<jb::TransformerLayer> tl;
    for (size_t i = 0; i < s.funcs.size(); ++i) {
      Layer& l = layers[i];
      const bool enc = s.funcs[i] == 6;
      l.ln0_w = randv(w, 0.1f, 1.0f);
      l.ln0_b = randv(w, 0.1f);
      l.ln1_w = randv(w, 0.1f, 1.0f);
      l.ln1_b = randv(w, 0.1f);
      l.c_attn.init(s.dtype, w, enc ? st : 3 * st, false, 1.0f / std::sqrt(float(w)));
      l.b_attn = randv(enc ? st : 3 * st, 0.1f);
      if (enc) {
        l.c_enc_kv.init(s.dtype, w, 2 * st, false, 1.0f / std::sqrt(float(w)));
        l.b_enc = randv(2 * st, 0.1f);
      }
      l.c_proj.init(s.dtype, st, w, false, 1.0f / std::sqrt(float(st)));
      l.b_proj = randv(w, 0.1f);
      l.fc.init(s.dtype, w, s.mlp, false, 1.0f / std::sqrt(float(w)));
      l.b_fc = randv(s.mlp, 0.1f);
      l.proj.init(s.dtype, s.mlp, w, false, 1.0f / std::sqrt(float(s.mlp)));
      l.b_mproj = randv(w, 0.1f);
      jb::TransformerLayer t;
      t.attn_func = s.funcs[i];
      t.ln_0 = {l.ln0_w.data(), l.ln0_b.data()};
      t.ln_1 = {l.ln1_w.data(), l.ln1_b.data()};
      t.c_attn = {l.c_attn.view(), l.b_attn.data()};
      if (enc) t.c_enc_kv = {l.c_enc_kv.view(), l.b_enc.data()};
      t.c_proj = {l.c_proj.view(), l.b_proj.data()};
      t.mlp_fc = {l.fc.view(), l.b_fc.data()};
      t.mlp_proj = {l.proj.view(), l.b_mproj.data()};
      tl.push_back(t);
    }
    x_emb.init(s.dtype, s.bins, w, false, 0.5f);
    pos_emb.init(s.dtype, s.len, w, false, 0.3f);
    if (!s.encode_only) x_out.init(s.dtype, w, s.bins, true, 2.0f / std::sqrt(float(w)));
    start = randv(w, 0.5f);
    jb::TransformerDims d;
    d.width = w;
    d.state = st;
    d.mlp = s.mlp;
    d.heads = s.heads;
    d.len = s.len;
    d.blocks = s.blocks;
    d.prime_len = s.prime;
    d.enc_len = s.enc;
    d.res_scale = s.res_scale;
    jb::AutoregressiveParts parts;
    parts.x_emb = x_emb.view();
    parts.pos_emb = pos_emb.view();
    parts.start_token = s.start ? start.data() : nullptr;
    parts.transformer = std::make_unique<jb::Transformer>(d, tl);
    if (!s.encode_only) parts.x_out = x_out.view();
    parts.add_cond_after = s.add_cond_after;
    parts.bins = s.bins;
    cpu = std::make_unique<jb::Autoregressive>(std::move(parts));

    for (size_t i = 0; i < layers.size(); ++i) {
      const Layer& l = layers[i];
      jb_cuda_layer_desc ld;
      std::memset(&ld, 0, sizeof ld);
      ld.attn_func = s.funcs[i];
      ld.ln0_w = l.ln0_w.data();
      ld.ln0_b = l.ln0_b.data();
      ld.ln1_w = l.ln1_w.data();
      ld.ln1_b = l.ln1_b.data();
      ld.c_attn = l.c_attn.abi();
      ld.c_attn_b = l.b_attn.data();
      if (s.funcs[i] == 6) {
        ld.c_enc_kv = l.c_enc_kv.abi();
        ld.c_enc_kv_b = l.b_enc.data();
      }
      ld.c_proj = l.c_proj.abi();
      ld.c_proj_b = l.b_proj.data();
      ld.mlp_fc = l.fc.abi();
      ld.mlp_fc_b = l.b_fc.data();
      ld.mlp_proj = l.proj.abi();
      ld.mlp_proj_b = l.b_mproj.data();
      ldesc.push_back(ld);
    }
    std::memset(&desc, 0, sizeof desc);
    desc.name = s.name;
    desc.width = w;
    desc.state = st;
    desc.mlp = s.mlp;
    desc.heads = s.heads;
    desc.len = s.len;
    desc.blocks = s.blocks;
    desc.prime_len = s.prime;
    desc.enc_len = s.enc;
    desc.res_scale = s.res_scale;
    desc.depth = int(ldesc.size());
    desc.layers = ldesc.data();
    desc.bins = s.bins;
    desc.x_emb = x_emb.abi();
    desc.pos_emb = pos_emb.abi();
    desc.start_token = s.start ? start.data() : nullptr;
    if (!s.encode_only) desc.x_out = x_out.abi();
    desc.add_cond_after = s.add_cond_after ? 1 : 0;
    desc.max_samples = s.max_n;
    desc.kv_dtype = JB_CUDA_DTYPE_F32;
  }
  bool needs_enc() const {
    for (int f : sp.funcs)
      if (f == 6) return true;
    return false;
  }
};

// Conditioning of one job.
struct Cond {
  int n = 1;
  std::vector<float> y, xc, enc;
  int xc_len = 0;  // 0: none
  const float* yp() const { return y.empty() ? nullptr : y.data(); }
  const float* xcp() const { return xc.empty() ? nullptr : xc.data(); }
  const float* encp() const { return enc.empty() ? nullptr : enc.data(); }
};

Cond make_cond(const Model& m, int n, bool y_cond, int xc_len) {
  Cond c;
  c.n = n;
  if (y_cond || !m.sp.start) c.y = randv(size_t(n) * m.sp.w, 0.5f);
  c.xc_len = xc_len;
  if (xc_len) c.xc = randv(size_t(n) * xc_len * m.sp.w, 0.3f);
  if (m.needs_enc()) c.enc = randv(size_t(n) * m.sp.enc * m.sp.w, 1.0f);
  return c;
}

double rel_err(const std::vector<float>& got, const std::vector<float>& want) {
  double worst = 0, scale = 1e-30;
  for (size_t i = 0; i < want.size(); ++i) {
    worst = std::max(worst, std::fabs(double(got[i]) - want[i]));
    scale = std::max(scale, std::fabs(double(want[i])));
  }
  return worst / scale;
}

struct Abort {
  int calls = 0, stop_at = -1;
  double last_done = 0, last_total = 0;
};
int progress_cb(void* user, double done, double total) {
  Abort* a = static_cast<Abort*>(user);
  ++a->calls;
  a->last_done = done;
  a->last_total = total;
  return a->stop_at >= 0 && a->calls >= a->stop_at ? 1 : 0;
}

struct WindowJob {
  int prefix = 0, end = 0, chunk = 0;
  float temperature = 1.0f;
  int top_k = 0;
  float top_p = 0.0f;
  uint64_t seed = 7;
  uint32_t stream = 3, sample_offset = 0;
  bool forced = false;
};

struct WindowOut {
  std::vector<int32_t> tokens;
  std::vector<float> prefix_logits, logits;
};

// The CPU engine's window: DecodeSession (+ one-pass prefill) and sample_window.
WindowOut cpu_window(const Model& m, const Cond& c, const std::vector<int32_t>& tokens_in, const std::vector<int32_t>& forced, const WindowJob& j) {
  jb::ThreadPool pool(1);
  jb::Progress prog;
  WindowOut o;
  o.tokens = tokens_in;
  jb::DecodeSession sess(*m.cpu, c.n, c.yp(), c.xcp(), c.xc_len, c.encp(), pool);
  o.prefix_logits.assign(size_t(c.n) * std::max(1, j.prefix) * m.sp.bins, 0.0f);
  if (j.prefix > 0) sess.prefill(o.tokens.data(), j.prefix, o.prefix_logits.data(), pool, prog);
  o.logits.assign(size_t(c.n) * std::max(1, j.end - j.prefix) * m.sp.bins, 0.0f);
  jb::SampleRequest r;
  r.start = j.prefix;
  r.end = j.end;
  r.params.temperature = j.temperature;
  r.params.top_k = j.top_k;
  r.params.top_p = j.top_p;
  r.seed = j.seed;
  r.stream = j.stream;
  r.sample_offset = j.sample_offset;
  r.forced = j.forced ? forced.data() : nullptr;
  r.record_logits = o.logits.data();
  jb::sample_window(sess, *m.cpu, o.tokens.data(), r, pool, prog);
  return o;
}

int gpu_window(jb_cuda_prior* p, const Model& m, const Cond& c, const std::vector<int32_t>& tokens_in, const std::vector<int32_t>& forced,
               const WindowJob& j, WindowOut& o, Abort* ab = nullptr, int check_every = 0) {
  o.tokens = tokens_in;
  o.prefix_logits.assign(size_t(c.n) * std::max(1, j.prefix) * m.sp.bins, 0.0f);
  o.logits.assign(size_t(c.n) * std::max(1, j.end - j.prefix) * m.sp.bins, 0.0f);
  jb_cuda_window_args a;
  std::memset(&a, 0, sizeof a);
  a.n = c.n;
  a.y_cond = c.yp();
  a.x_cond = c.xcp();
  a.x_cond_len = c.xc_len;
  a.encoder_kv = c.encp();
  a.tokens = o.tokens.data();
  a.prefix = j.prefix;
  a.end = j.end;
  a.prefill_chunk = j.chunk;
  a.temperature = j.temperature;
  a.top_k = j.top_k;
  a.top_p = j.top_p;
  a.seed = j.seed;
  a.stream = j.stream;
  a.sample_offset = j.sample_offset;
  a.forced = j.forced ? forced.data() : nullptr;
  a.prefix_logits = j.prefix > 0 ? o.prefix_logits.data() : nullptr;
  a.logits = o.logits.data();
  a.progress = ab ? progress_cb : nullptr;
  a.progress_user = ab;
  a.check_every = check_every;
  return api->prior_window(p, &a);
}

std::vector<int32_t> random_tokens(int n, int len, int bins) {
  std::vector<int32_t> t(size_t(n) * len);
  for (auto& v : t) v = int32_t(rng() % uint32_t(bins));
  return t;
}

int count_token_diffs(const std::vector<int32_t>& a, const std::vector<int32_t>& b, int n, int len, int from, int to) {
  int d = 0;
  for (int s = 0; s < n; ++s)
    for (int t = from; t < to; ++t) d += a[size_t(s) * len + t] != b[size_t(s) * len + t];
  return d;
}

jb_cuda_prior* create(Model& m, int kv_dtype) {
  m.desc.kv_dtype = kv_dtype;
  jb_cuda_prior* p = nullptr;
  API_OK(api->prior_create(ctx, &m.desc, &p));
  CHECK(p != nullptr && api->prior_bytes(p) > 0, "prior_create gave a model");
  return p;
}

// One window case on the fp32 caches: tokens exact, logits 1e-5, prefix logits.
void window_case(Model& m, jb_cuda_prior* p, int n, bool y_cond, int xc_len, WindowJob j, const char* what) {
  const Cond c = make_cond(m, n, y_cond, xc_len);
  const std::vector<int32_t> tokens = random_tokens(n, m.sp.len, m.sp.bins);
  const std::vector<int32_t> forced = random_tokens(n, m.sp.len, m.sp.bins);
  const WindowOut want = cpu_window(m, c, tokens, forced, j);
  WindowOut got;
  API_OK(gpu_window(p, m, c, tokens, forced, j, got));
  const int diffs = count_token_diffs(got.tokens, want.tokens, n, m.sp.len, 0, m.sp.len);
  CHECK(diffs == 0, "%s: %d tokens differ from the CPU's", what, diffs);
  const double e_steps = rel_err(got.logits, want.logits);
  const double e_prefix = j.prefix > 0 ? rel_err(got.prefix_logits, want.prefix_logits) : 0.0;
  CHECK(e_steps <= 1e-5, "%s: step logits rel err %.3e", what, e_steps);
  CHECK(e_prefix <= 1e-5, "%s: prefix logits rel err %.3e", what, e_prefix);
  std::string extra;
  if (j.prefix > 0) {
    // chunked prefill: the same bits as the one pass
    WindowJob jc = j;
    jc.chunk = 7;
    WindowOut chunked;
    API_OK(gpu_window(p, m, c, tokens, forced, jc, chunked));
    CHECK(chunked.prefix_logits == got.prefix_logits, "%s: chunked prefill (7) logits differ from the one pass", what);
    CHECK(chunked.tokens == got.tokens && chunked.logits == got.logits, "%s: chunked prefill changed the window", what);
    extra = ", chunked prefill (7) equal bit for bit";
  }
  std::printf("ok   window %-58s tokens %d/%d equal, step logits %.2e, prefix logits %.2e (tolerance 1e-5)%s\n", what,
              n * (j.end - j.prefix), n * (j.end - j.prefix), e_steps, e_prefix, extra.c_str());
}

void forward_case(Model& m, jb_cuda_prior* p, int n, bool y_cond, int xc_len, int attn_layer, int attn_head, const char* what) {
  const Cond c = make_cond(m, n, y_cond, xc_len);
  const std::vector<int32_t> tokens = random_tokens(n, m.sp.len, m.sp.bins);
  const int L = m.sp.len, cols = m.sp.encode_only ? m.sp.w : m.sp.bins;
  const int keys = attn_layer >= 0 && m.sp.funcs[attn_layer] == 6 ? m.sp.enc : L;
  std::vector<float> want(size_t(n) * L * cols), got(want.size(), 0.0f);
  std::vector<float> want_p(attn_layer >= 0 ? size_t(n) * L * keys : 1), got_p(want_p.size(), -1.0f);
  jb::ThreadPool pool(1);
  jb::Progress prog;
  m.cpu->forward_prefix(tokens.data(), n, L, c.yp(), c.xcp(), c.xc_len, c.encp(), want.data(), pool, prog, nullptr, nullptr, nullptr, attn_layer,
                        attn_head, attn_layer >= 0 ? want_p.data() : nullptr);
  jb_cuda_forward_args a;
  std::memset(&a, 0, sizeof a);
  a.n = n;
  a.tokens = tokens.data();
  a.y_cond = c.yp();
  a.x_cond = c.xcp();
  a.x_cond_len = c.xc_len;
  a.encoder_kv = c.encp();
  a.out = got.data();
  a.attn_layer = attn_layer;
  a.attn_head = attn_head;
  a.attn_out = attn_layer >= 0 ? got_p.data() : nullptr;
  API_OK(api->prior_forward(p, &a));
  const double e = rel_err(got, want);
  CHECK(e <= 1e-5, "%s: forward rel err %.3e", what, e);
  double ep = 0;
  if (attn_layer >= 0) {
    for (size_t i = 0; i < want_p.size(); ++i) ep = std::max(ep, std::fabs(double(got_p[i]) - want_p[i]));
    CHECK(ep <= 1e-5, "%s: attention probabilities max err %.3e", what, ep);
  }
  std::printf("ok   forward %-57s %s rel err %.2e (tolerance 1e-5)", what, m.sp.encode_only ? "activations" : "logits", e);
  if (attn_layer >= 0) std::printf(", layer %d (type %d) head %d probabilities max err %.2e", attn_layer, m.sp.funcs[attn_layer], attn_head, ep);
  std::printf("\n");
}

// fp16 caches: teacher-forced on the CPU's tokens (so a near-tie cannot fork the sequence),
// logits compared within a looser tolerance; and sampling agreement counted.
void f16_case(Model& m, int n, const char* what) {
  jb_cuda_prior* p = create(m, JB_CUDA_DTYPE_F16);
  const Cond c = make_cond(m, n, true, m.sp.len);
  const std::vector<int32_t> tokens = random_tokens(n, m.sp.len, m.sp.bins);
  WindowJob j;
  j.prefix = 10;
  j.end = m.sp.len;
  const WindowOut free_run = cpu_window(m, c, tokens, tokens, j);
  WindowJob jf = j;
  jf.forced = true;
  WindowOut got;
  API_OK(gpu_window(p, m, c, tokens, free_run.tokens, jf, got));
  CHECK(got.tokens == free_run.tokens, "%s: forced tokens taken", what);
  const double e = rel_err(got.logits, free_run.logits), ep = rel_err(got.prefix_logits, free_run.prefix_logits);
  CHECK(e <= 2e-2 && ep <= 2e-2, "%s: fp16 KV logits rel err %.3e / prefix %.3e", what, e, ep);
  WindowOut sampled;
  API_OK(gpu_window(p, m, c, tokens, tokens, j, sampled));
  const int diffs = count_token_diffs(sampled.tokens, free_run.tokens, n, m.sp.len, j.prefix, j.end);
  std::printf("ok   window %-58s fp16 KV: step logits rel err %.2e, prefix %.2e (tolerance 2e-2); sampled tokens equal to the "
              "fp32 CPU's: %d/%d\n",
              what, e, ep, n * (j.end - j.prefix) - diffs, n * (j.end - j.prefix));
  api->prior_free(p);
}

void abort_case(Model& m) {
  jb_cuda_prior* p = create(m, JB_CUDA_DTYPE_F32);
  const Cond c = make_cond(m, 2, true, 1);
  const std::vector<int32_t> tokens = random_tokens(2, m.sp.len, m.sp.bins);
  WindowJob j;
  j.prefix = 5;
  j.end = m.sp.len;
  Abort ab;
  ab.stop_at = 2;  // the prefill's call, then the first decode batch's
  WindowOut got;
  const int rc = gpu_window(p, m, c, tokens, tokens, j, got, &ab, 8);
  CHECK(rc == JB_CUDA_ERR_ABORTED, "abort: status %d (%s)", rc, api->last_error());
  const std::string abort_msg = api->last_error();
  CHECK(abort_msg.find("aborted") != std::string::npos, "abort message: %s", abort_msg.c_str());
  CHECK(ab.calls == 2 && ab.last_done == 13 && ab.last_total == m.sp.len, "abort: %d calls, done %.0f of %.0f", ab.calls, ab.last_done,
        ab.last_total);
  // the model still works: a full window equal to the CPU's, with progress all the way
  Abort watch;
  const WindowOut want = cpu_window(m, c, tokens, tokens, j);
  API_OK(gpu_window(p, m, c, tokens, tokens, j, got, &watch, 8));
  CHECK(got.tokens == want.tokens, "after an abort: tokens differ");
  CHECK(watch.last_done == m.sp.len && watch.calls == 1 + (m.sp.len - 5 + 7) / 8, "progress: %d calls, last %.0f", watch.calls, watch.last_done);
  std::printf("ok   abort through progress: ERR_ABORTED after %d calls (\"%s\"); the next window equals the CPU's (%d progress calls)\n", ab.calls,
              abort_msg.c_str(), watch.calls);
  api->prior_free(p);
}

void memory_case(Model& m) {
  uint64_t before = 0, after = 0, freed = 0, f0 = 0, f1 = 0, f2 = 0;
  API_OK(api->memory_info(ctx, &before, &f0, nullptr));
  jb_cuda_prior* p = create(m, JB_CUDA_DTYPE_F32);
  API_OK(api->memory_info(ctx, &after, &f1, nullptr));
  const uint64_t bytes = api->prior_bytes(p);
  CHECK(after == before + bytes, "context bytes %llu -> %llu with a model of %llu", (unsigned long long)before, (unsigned long long)after,
        (unsigned long long)bytes);
  CHECK(f1 + bytes <= f0, "free %llu -> %llu", (unsigned long long)f0, (unsigned long long)f1);
  api->prior_free(p);
  API_OK(api->memory_info(ctx, &freed, &f2, nullptr));
  CHECK(freed == before && f2 == f0, "after prior_free: context %llu (was %llu), free %llu (was %llu)", (unsigned long long)freed,
        (unsigned long long)before, (unsigned long long)f2, (unsigned long long)f0);
  std::printf("ok   prior_free gives its %.2f MiB back (context bytes and free memory as before)\n", bytes / 1048576.0);
}

// A model whose caches cannot fit: create says so before touching its (tiny) weights.
void oom_case() {
  uint64_t held = 0, free_b = 0, total = 0;
  API_OK(api->memory_info(ctx, &held, &free_b, &total));
  Spec s;
  s.name = "the oversized test prior";
  s.w = 64;
  s.s = 64;
  s.mlp = 64;
  s.heads = 1;
  s.funcs = {0, 0};
  s.enc = 0;
  s.prime = 0;
  // caches: 2 layers x K and V x max_n x len x 64 x 4 bytes > free
  s.len = 4096;
  s.blocks = 64;
  s.max_n = int(std::min<uint64_t>(1024, free_b / (2 * 2 * 4096ull * 64 * 4) + 2));
  Model m(s);
  jb_cuda_prior* p = nullptr;
  const int rc = api->prior_create(ctx, &m.desc, &p);
  CHECK(rc == JB_CUDA_ERR_OUT_OF_MEMORY && p == nullptr, "oversized prior: status %d (%s)", rc, api->last_error());
  const std::string msg = api->last_error();
  CHECK(msg.find("the oversized test prior") != std::string::npos && msg.find("needs") != std::string::npos && msg.find("free") != std::string::npos &&
            msg.find("bytes") != std::string::npos,
        "the message names the model, the bytes asked and free: %s", msg.c_str());
  uint64_t held2 = 0;
  API_OK(api->memory_info(ctx, &held2, nullptr, nullptr));
  CHECK(held2 == held, "nothing allocated by the failed create");
  std::printf("ok   out of memory at create (max_samples %d, %.0f MiB free): \"%s\"\n", s.max_n, free_b / 1048576.0, msg.c_str());
}

void bench() {
  Spec s;
  s.name = "bench width 256";
  s.w = 256;
  s.s = 256;
  s.mlp = 256;
  s.heads = 2;
  s.len = 512;
  s.blocks = 16;
  s.bins = 512;
  s.funcs = {1, 2, 1, 2, 1, 2};
  s.enc = 0;
  s.prime = 0;
  s.max_n = 1;
  s.add_cond_after = false;
  Model m(s);
  for (int kv : {JB_CUDA_DTYPE_F32, JB_CUDA_DTYPE_F16}) {
    jb_cuda_prior* p = create(m, kv);
    const Cond c = make_cond(m, 1, false, 512);
    const std::vector<int32_t> tokens = random_tokens(1, 512, 512);
    WindowJob j;
    j.end = 512;
    WindowOut got;
    auto t0 = std::chrono::steady_clock::now();
    API_OK(gpu_window(p, m, c, tokens, tokens, j, got));
    const double dec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    j.prefix = 448;  // a re-prefill of 448 positions and 64 steps
    t0 = std::chrono::steady_clock::now();
    API_OK(gpu_window(p, m, c, tokens, tokens, j, got));
    const double pre = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("bench: width 256, 6 layers, n_ctx 512, 512 bins, n = 1, %s KV: 512-token window %.2f s (%.2f ms a token); prefill 448 + 64 "
                "steps %.2f s\n",
                kv == JB_CUDA_DTYPE_F32 ? "fp32" : "fp16", dec, dec * 1000 / 512, pre);
    api->prior_free(p);
  }
}

void invalid_cases(Model& m) {
  jb_cuda_prior* p = nullptr;
  jb_cuda_prior_desc d = m.desc;
  d.heads = 5;  // 24 % 5 != 0
  CHECK(api->prior_create(ctx, &d, &p) == JB_CUDA_ERR_INVALID_ARGUMENT && std::strstr(api->last_error(), "heads"), "%s", api->last_error());
  std::vector<jb_cuda_layer_desc> ls = m.ldesc;
  ls[1].attn_func = 4;
  d = m.desc;
  d.layers = ls.data();
  CHECK(api->prior_create(ctx, &d, &p) == JB_CUDA_ERR_INVALID_ARGUMENT && std::strstr(api->last_error(), "attention type 4"), "%s",
        api->last_error());
  ls = m.ldesc;
  ls[0].c_proj.k += 1;
  d.layers = ls.data();
  CHECK(api->prior_create(ctx, &d, &p) == JB_CUDA_ERR_INVALID_ARGUMENT && std::strstr(api->last_error(), "c_proj"), "%s", api->last_error());
  d = m.desc;
  d.width = 0;
  CHECK(api->prior_create(ctx, &d, &p) == JB_CUDA_ERR_INVALID_ARGUMENT, "width 0");
  std::printf("ok   invalid descriptions refused (heads, attention type, shapes, dims)\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s path/to/libjukebox-cuda.so [--bench] [--oom-only]\n", argv[0]);
    return 2;
  }
  bool do_bench = false, oom_only = false;
  for (int i = 2; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--bench")) do_bench = true;
    else if (!std::strcmp(argv[i], "--oom-only")) oom_only = true;
  }
  void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  CHECK(lib != nullptr, "dlopen %s: %s", argv[1], dlerror());
  auto get = reinterpret_cast<jb_cuda_get_api_fn>(dlsym(lib, "jb_cuda_get_api"));
  CHECK(get != nullptr, "jb_cuda_get_api");
  api = get(JB_CUDA_API_VERSION);
  CHECK(api != nullptr, "API version %u", JB_CUDA_API_VERSION);
  CHECK(api->capabilities() & JB_CUDA_CAP_PRIOR_MODEL, "JB_CUDA_CAP_PRIOR_MODEL is set");
  API_OK(api->context_create(0, &ctx));
  oom_case();
  if (oom_only) {
    // the process goes on: a model that fits the budget still runs, equal to the CPU
    Spec t;
    t.name = "a tiny prior";
    t.w = 16;
    t.s = 8;
    t.mlp = 16;
    t.heads = 1;
    t.len = 32;
    t.blocks = 4;
    t.bins = 16;
    t.funcs = {0, 1};
    t.enc = 0;
    t.max_n = 1;
    Model mt(t);
    jb_cuda_prior* pt = create(mt, JB_CUDA_DTYPE_F32);
    WindowJob j;
    j.prefix = 5;
    j.end = 32;
    window_case(mt, pt, 1, true, 0, j, "tiny n=1 after the refusal [5,32)");
    api->prior_free(pt);
  }
  if (!oom_only) {
    // 1. every type, fp32, 2 heads, add_cond_after, full x_cond, y_cond, encoder
    Spec a;
    a.name = "prior A (types 0,1,2,3,6,7, fp32, 2 heads)";
    Model ma(a);
    invalid_cases(ma);
    memory_case(ma);
    jb_cuda_prior* pa = create(ma, JB_CUDA_DTYPE_F32);
    WindowJob j;
    j.end = a.len;
    window_case(ma, pa, 2, true, a.len, j, "A n=2 y_cond x_cond=full T=1 [0,64)");
    j.prefix = 23;
    j.top_k = 5;
    j.temperature = 0.9f;
    window_case(ma, pa, 3, false, 1, j, "A n=3 start x_cond=broadcast top_k=5 [23,64)");
    j = WindowJob();
    j.prefix = 40;
    j.end = 58;
    j.forced = true;
    window_case(ma, pa, 1, true, 0, j, "A n=1 forced [40,58)");
    forward_case(ma, pa, 2, true, a.len, 4, 1, "A n=2 (probabilities of the enc-dec layer)");
    forward_case(ma, pa, 3, false, 1, 2, 0, "A n=3 (probabilities of the column layer)");
    api->prior_free(pa);

    // 2. fp16 weights, 1 head, no add_cond_after, res_scale 0.5
    Spec b;
    b.name = "prior B (fp16, 1 head, res_scale 0.5)";
    b.dtype = JB_CUDA_DTYPE_F16;
    b.heads = 1;
    b.add_cond_after = false;
    b.res_scale = 0.5f;
    b.funcs = {1, 2, 3, 0, 7, 1};
    b.enc = 0;
    Model mb(b);
    jb_cuda_prior* pb = create(mb, JB_CUDA_DTYPE_F32);
    j = WindowJob();
    j.prefix = 30;
    j.end = 64;
    j.top_p = 0.8f;
    j.seed = 99;
    j.sample_offset = 5;
    window_case(mb, pb, 3, true, 0, j, "B n=3 y_cond top_p=0.8 [30,64)");
    j = WindowJob();
    j.end = 17;
    window_case(mb, pb, 2, false, b.len, j, "B n=2 start x_cond=full [0,17)");
    forward_case(mb, pb, 2, false, 1, 3, 0, "B n=2 (probabilities of the dense layer)");
    api->prior_free(pb);

    // 3. bf16 weights, 4 heads, labels only (no start token), encoder
    Spec c;
    c.name = "prior C (bf16, 4 heads, labels)";
    c.dtype = JB_CUDA_DTYPE_BF16;
    c.s = 32;
    c.heads = 4;
    c.start = false;
    c.funcs = {2, 6, 1, 3};
    Model mc(c);
    jb_cuda_prior* pc = create(mc, JB_CUDA_DTYPE_F32);
    j = WindowJob();
    j.prefix = 37;
    j.end = 64;
    j.top_p = 0.9f;
    window_case(mc, pc, 1, true, c.len, j, "C n=1 top_p=0.9 [37,64)");
    forward_case(mc, pc, 2, true, 0, 1, 3, "C n=2 (probabilities of the enc-dec layer, head 3)");
    api->prior_free(pc);

    // 4. the lyric encoder's body: no output projection, activations out
    Spec e;
    e.name = "encoder E (no x_out)";
    e.encode_only = true;
    e.bins = 80;
    e.funcs = {0, 1, 0};
    e.enc = 0;
    e.add_cond_after = false;
    Model me(e);
    jb_cuda_prior* pe = create(me, JB_CUDA_DTYPE_F32);
    forward_case(me, pe, 2, false, 0, 0, 1, "E n=2 encoder activations");
    api->prior_free(pe);

    f16_case(ma, 2, "A n=2 x_cond=full [10,64)");
    abort_case(mb);
    if (do_bench) bench();
  }
  api->context_destroy(ctx);
  std::printf("ok %ld checks\n", g_checks);
  return 0;
}
