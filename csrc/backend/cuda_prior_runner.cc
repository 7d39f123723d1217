#include "cuda_prior_runner.h"

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_device.h"

namespace jb {

namespace {

jb_cuda_matrix matrix_of(const WeightView& w, const std::string& name) {
  jb_cuda_matrix m{};
  if (!w.data) return m;
  m.data = w.data;
  m.dtype = cuda_dtype_of(int(w.dtype), name);
  m.k = w.k;
  m.n = w.n;
  m.transposed = w.transposed ? 1 : 0;
  return m;
}

// Embedding tables are passed as stored, (rows, width), not transposed.
jb_cuda_matrix table_of(const WeightView& w, const std::string& name) {
  jb_cuda_matrix m = matrix_of(w, name);
  m.transposed = 0;
  return m;
}

class CudaPriorRunner final : public PriorRunner {
 public:
  CudaPriorRunner(const Autoregressive& m, const CudaPriorOptions& o) : m_(m), opts_(o), ctx_(o.device) {
    // Upload now, so a model the device cannot hold fails at load, not mid-generation.
    ensure(std::max(1, o.samples));
  }
  CudaPriorRunner(const PriorModel& pm, const CudaPriorOptions& o, CudaVQLevelWeights* conditioner)
      : CudaPriorRunner(*pm.prior, o) {
    if (conditioner) {
      cond_width_ = conditioner->out_channels;
      cond_hop_ = conditioner->hop;
      // Moved, not copied: the layer descs point into these arrays.
      std::vector<CudaVQLevelWeights> levels;
      levels.push_back(std::move(*conditioner));
      conditioner_ = std::make_unique<CudaVQDecoder>(std::move(levels), o.name + " (upsampler conditioner)", o.device);
    }
    if (pm.lyrics) {
      CudaPriorOptions lo = o;
      lo.name = o.name + " (lyric encoder)";
      lyric_body_ = std::make_unique<CudaPriorRunner>(*pm.lyrics->body, lo);
    }
  }

  ConditioningHooks conditioning_hooks() override {
    ConditioningHooks h;
    if (conditioner_)
      h.upsampler_stack = [this](const int32_t* z, int n, int t, int& len, Progress& progress) {
        Buffer<float> nct = conditioner_->decode(z, n, t, 0, progress);
        len = t * cond_hop_;
        return std::vector<float>(nct.data(), nct.data() + size_t(n) * cond_width_ * len);
      };
    if (lyric_body_)
      h.lyric_body = [this](const int32_t* tokens, int n, Progress& progress) {
        return lyric_body_->forward(ConditionedWindow{}, tokens, n, progress);
      };
    return h;
  }
  ~CudaPriorRunner() override {
    if (prior_) ctx_.api().prior_free(prior_);
  }

  const char* backend() const override { return "cuda"; }
  std::string describe() const override { return "CUDA on " + ctx_.device_name(); }
  uint64_t device_bytes() const override { return prior_ ? ctx_.api().prior_bytes(prior_) : 0; }

  WindowResult sample(const ConditionedWindow& c, const WindowJob& job, Progress& progress) override {
    check_window_job(m_, job);
    std::lock_guard<std::mutex> lock(mu_);
    ensure(job.n);
    const int n = job.n, bins = m_.bins();
    WindowResult r;
    r.tokens = job.tokens;
    if (job.record_logits) r.logits.resize(size_t(n) * (job.end - job.prefix) * bins);
    if (job.record_prefix_logits) r.prefix_logits.resize(size_t(n) * job.prefix * bins);
    jb_cuda_window_args a{};
    a.n = n;
    a.y_cond = c.y();
    a.x_cond = c.x();
    a.x_cond_len = c.x_cond_len;
    a.encoder_kv = c.enc();
    a.tokens = r.tokens.data();
    a.prefix = job.prefix;
    a.end = job.end;
    a.prefill_chunk = job.prefill_chunk;
    a.temperature = job.params.temperature;
    a.top_k = job.params.top_k;
    a.top_p = job.params.top_p;
    a.seed = job.seed;
    a.stream = job.stream;
    a.sample_offset = job.sample_offset;
    a.forced = job.forced.empty() ? nullptr : job.forced.data();
    a.prefix_logits = job.record_prefix_logits ? r.prefix_logits.data() : nullptr;
    a.logits = job.record_logits ? r.logits.data() : nullptr;
    a.progress = &cuda_progress;
    a.progress_user = &progress;
    a.check_every = 0;
    const int st = ctx_.api().prior_window(prior_, &a);
    if (st != JB_CUDA_OK) throw_cuda_status(st, "CUDA window of " + opts_.name);
    return r;
  }

  std::vector<float> forward(const ConditionedWindow& c, const int32_t* tokens, int n, Progress& progress) override {
    std::vector<float> out(size_t(n) * m_.len() * (m_.encode_only() ? m_.width() : m_.bins()));
    run_forward(c, tokens, n, out.data(), -1, 0, nullptr, progress);
    return out;
  }

  std::vector<float> attention(const ConditionedWindow& c, const int32_t* tokens, int n, int layer, int head,
                               Progress& progress) override {
    const Transformer& t = m_.transformer();
    require(layer >= 0 && layer < t.depth() && head >= 0 && head < t.dims().heads, "ERR_INVALID_ARGUMENT",
            "attention layer/head out of range");
    const int keys = t.layer(layer).attn_func == 6 ? t.dims().enc_len : m_.len();
    std::vector<float> probs(size_t(n) * m_.len() * keys);
    std::vector<float> logits(size_t(n) * m_.len() * (m_.encode_only() ? m_.width() : m_.bins()));
    run_forward(c, tokens, n, logits.data(), layer, head, probs.data(), progress);
    return probs;
  }

 private:
  void run_forward(const ConditionedWindow& c, const int32_t* tokens, int n, float* out, int layer, int head, float* attn,
                   Progress& progress) {
    require(n > 0, "ERR_INVALID_ARGUMENT", "a forward needs at least one sample");
    std::lock_guard<std::mutex> lock(mu_);
    ensure(n);
    jb_cuda_forward_args a{};
    a.n = n;
    a.tokens = tokens;
    a.y_cond = c.y();
    a.x_cond = c.x();
    a.x_cond_len = c.x_cond_len;
    a.encoder_kv = c.enc();
    a.out = out;
    a.attn_layer = layer;
    a.attn_head = head;
    a.attn_out = attn;
    a.progress = &cuda_progress;
    a.progress_user = &progress;
    const int st = ctx_.api().prior_forward(prior_, &a);
    if (st != JB_CUDA_OK) throw_cuda_status(st, "CUDA forward of " + opts_.name);
  }

  void build_desc(int max_samples) {
    const Transformer& t = m_.transformer();
    const TransformerDims& d = t.dims();
    const AutoregressiveParts& p = m_.parts();
    layers_.assign(t.depth(), jb_cuda_layer_desc{});
    for (int i = 0; i < t.depth(); ++i) {
      const TransformerLayer& l = t.layer(i);
      const std::string nm = opts_.name + " layer " + std::to_string(i);
      jb_cuda_layer_desc& o = layers_[i];
      o.attn_func = l.attn_func;
      o.ln0_w = l.ln_0.w;
      o.ln0_b = l.ln_0.b;
      o.ln1_w = l.ln_1.w;
      o.ln1_b = l.ln_1.b;
      o.c_attn = matrix_of(l.c_attn.w, nm + " attn.c_attn");
      o.c_attn_b = l.c_attn.b;
      o.c_enc_kv = matrix_of(l.c_enc_kv.w, nm + " attn.c_enc_kv");
      o.c_enc_kv_b = l.c_enc_kv.b;
      o.c_proj = matrix_of(l.c_proj.w, nm + " attn.c_proj");
      o.c_proj_b = l.c_proj.b;
      o.mlp_fc = matrix_of(l.mlp_fc.w, nm + " mlp.c_fc");
      o.mlp_fc_b = l.mlp_fc.b;
      o.mlp_proj = matrix_of(l.mlp_proj.w, nm + " mlp.c_proj");
      o.mlp_proj_b = l.mlp_proj.b;
    }
    desc_ = jb_cuda_prior_desc{};
    desc_.name = opts_.name.c_str();
    desc_.width = d.width;
    desc_.state = d.state;
    desc_.mlp = d.mlp;
    desc_.heads = d.heads;
    desc_.len = d.len;
    desc_.blocks = d.blocks;
    desc_.prime_len = d.prime_len;
    desc_.enc_len = d.enc_len;
    desc_.res_scale = d.res_scale;
    desc_.depth = t.depth();
    desc_.layers = layers_.data();
    desc_.bins = p.bins;
    desc_.x_emb = table_of(p.x_emb, opts_.name + " x_emb");
    desc_.pos_emb = table_of(p.pos_emb, opts_.name + " pos_emb");
    desc_.start_token = p.start_token;
    desc_.x_out = matrix_of(p.x_out, opts_.name + " x_out");
    desc_.add_cond_after = p.add_cond_after ? 1 : 0;
    desc_.max_samples = max_samples;
    desc_.kv_dtype = opts_.kv_f16 ? JB_CUDA_DTYPE_F16 : JB_CUDA_DTYPE_F32;
  }

  // The device model for at least n samples (weights are uploaded again only when a window
  // needs more samples than the model was made for).
  void ensure(int n) {
    if (prior_ && n <= capacity_) return;
    if (prior_) {
      ctx_.api().prior_free(prior_);
      prior_ = nullptr;
      capacity_ = 0;
    }
    build_desc(n);
    const int st = ctx_.api().prior_create(ctx_.get(), &desc_, &prior_);
    if (st != JB_CUDA_OK) {
      prior_ = nullptr;
      throw_cuda_status(st, "loading " + opts_.name + " onto " + ctx_.device_name() + " for " + std::to_string(n) + " sample(s)");
    }
    capacity_ = n;
  }

  const Autoregressive& m_;
  CudaPriorOptions opts_;
  CudaContext ctx_;
  std::unique_ptr<CudaVQDecoder> conditioner_;      // upsamplers: the conditioner's stack
  int cond_width_ = 0, cond_hop_ = 1;
  std::unique_ptr<CudaPriorRunner> lyric_body_;     // 5b_lyrics: the encoder's body
  std::mutex mu_;
  std::vector<jb_cuda_layer_desc> layers_;
  jb_cuda_prior_desc desc_{};
  jb_cuda_prior* prior_ = nullptr;
  int capacity_ = 0;
};

}  // namespace

std::unique_ptr<PriorRunner> make_cuda_prior_runner(const PriorModel& model, const CudaPriorOptions& opts,
                                                    CudaVQLevelWeights* conditioner) {
  return std::make_unique<CudaPriorRunner>(model, opts, conditioner);
}

std::unique_ptr<PriorRunner> make_cuda_prior_runner(const Autoregressive& model, const CudaPriorOptions& opts) {
  return std::make_unique<CudaPriorRunner>(model, opts);
}

}  // namespace jb
