// JS class Prior: a prior's transformer (and lyric encoder) built from a plan made by
// lib/prior/layout.ts. Weights stay in the file's dtype, read from the memory mapping.
// Windows run through a PriorRunner (csrc/model/prior_runner.h) of the backend the plan
// names: the CPU engine, or the CUDA library's model path.
#include "prior_binding.h"

#include <algorithm>
#include <memory>
#include <string>

#include "../backend/cuda_prior_runner.h"
#include "../model/conditioning.h"
#include "../model/decode_session.h"
#include "../model/prior.h"
#include "../model/prior_model.h"
#include "../model/prior_runner.h"
#include "async_job.h"
#include "cuda_stack.h"
#include "js_error.h"
#include "weight_store.h"
#include "weights.h"

namespace jb {

namespace {

struct PriorState {
  std::shared_ptr<WeightStore> store;
  std::shared_ptr<MappedFile> file;
  PriorModel model;
  std::unique_ptr<PriorRunner> runner;  // declared last: destroyed first (it refers to model)
};

RangeEmbedding range_embedding(WeightStore& st, const Napi::Object& o, int bins, int width, const std::string& name) {
  RangeEmbedding r;
  r.bins = bins;
  r.emb = st.matrix(o.Get("emb"), bins, width, name + ".emb.weight");
  r.pos_min = get_number_or(o, "min", 0);
  r.pos_max = get_number_or(o, "max", 1);
  r.clamp = get_bool_or(o, "clamp", false);
  return r;
}

Linear linear(WeightStore& st, const Napi::Object& o, int in, int out, const std::string& name) {
  Linear l;
  l.w = st.matrix(o.Get("w"), in, out, name + ".w");
  l.b = st.vector(o.Get("b"), out, name + ".b");
  return l;
}

LayerNormW norm(WeightStore& st, const Napi::Object& o, int width, const std::string& name) {
  return {st.vector(o.Get("w"), width, name + ".weight"), st.vector(o.Get("b"), width, name + ".bias")};
}

std::unique_ptr<Transformer> build_transformer(WeightStore& st, const Napi::Object& o, const std::string& prefix) {
  TransformerDims d;
  d.width = get_int(o, "width");
  d.state = get_int(o, "state");
  d.mlp = get_int(o, "mlp");
  d.heads = get_int(o, "heads");
  d.len = get_int(o, "len");
  d.blocks = get_int(o, "blocks");
  d.prime_len = get_int_or(o, "primeLen", 0);
  d.enc_len = get_int_or(o, "encLen", 0);
  d.res_scale = float(get_number_or(o, "resScale", 1.0));
  std::vector<TransformerLayer> layers;
  Napi::Array arr = o.Get("layers").As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Object lo = arr.Get(i).As<Napi::Object>();
    const std::string p = prefix + "._attn_mods." + std::to_string(i);
    TransformerLayer l;
    l.attn_func = get_int(lo, "attnFunc");
    l.ln_0 = norm(st, lo.Get("ln0").As<Napi::Object>(), d.width, p + ".ln_0");
    l.ln_1 = norm(st, lo.Get("ln1").As<Napi::Object>(), d.width, p + ".ln_1");
    const bool enc_dec = l.attn_func == 6;
    l.c_attn = linear(st, lo.Get("cAttn").As<Napi::Object>(), d.width, enc_dec ? d.state : 3 * d.state, p + ".attn.c_attn");
    if (enc_dec) l.c_enc_kv = linear(st, lo.Get("cEncKv").As<Napi::Object>(), d.width, 2 * d.state, p + ".attn.c_enc_kv");
    l.c_proj = linear(st, lo.Get("cProj").As<Napi::Object>(), d.state, d.width, p + ".attn.c_proj");
    l.mlp_fc = linear(st, lo.Get("mlpFc").As<Napi::Object>(), d.width, d.mlp, p + ".mlp.c_fc");
    l.mlp_proj = linear(st, lo.Get("mlpProj").As<Napi::Object>(), d.mlp, d.width, p + ".mlp.c_proj");
    layers.push_back(l);
  }
  return std::make_unique<Transformer>(d, std::move(layers));
}

std::unique_ptr<Autoregressive> build_autoregressive(WeightStore& st, const Napi::Object& o, const std::string& name) {
  AutoregressiveParts parts;
  parts.transformer = build_transformer(st, o.Get("transformer").As<Napi::Object>(), name + ".transformer");
  const TransformerDims& d = parts.transformer->dims();
  parts.bins = get_int(o, "bins");
  parts.add_cond_after = get_bool_or(o, "addCondAfter", false);
  parts.x_emb = st.matrix(o.Get("xEmb"), parts.bins, d.width, name + ".x_emb.weight");
  parts.pos_emb = st.matrix(o.Get("posEmb"), d.len, d.width, name + ".pos_emb.pos_emb");
  if (!o.Get("startToken").IsUndefined() && !o.Get("startToken").IsNull())
    parts.start_token = st.vector(o.Get("startToken"), d.width, name + ".start_token");
  if (!o.Get("xOut").IsUndefined() && !o.Get("xOut").IsNull()) {
    parts.x_out = st.matrix(o.Get("xOut"), parts.bins, d.width, name + ".x_out.weight");
    // stored (bins, w) like nn.Linear: the logical matrix for h . W is (w, bins)
    parts.x_out.transposed = true;
    parts.x_out.k = d.width;
    parts.x_out.n = parts.bins;
  }
  return std::make_unique<Autoregressive>(std::move(parts));
}

const float* optional_f32(const Napi::Value& v, size_t expect, const char* what) {
  return v.IsNull() || v.IsUndefined() ? nullptr : float32_arg(v, expect, what);
}

Napi::Float32Array adopt(Napi::Env env, std::vector<float>&& v) {
  // An external buffer over no memory would come out detached: empty results are plain.
  if (v.empty()) return Napi::Float32Array::New(env, 0);
  auto* holder = new std::vector<float>(std::move(v));
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, holder->data(), holder->size() * sizeof(float),
                                                [](Napi::Env, void*, std::vector<float>* h) { delete h; }, holder);
  return Napi::Float32Array::New(env, holder->size(), ab, 0);
}

// The conditioning arrays from JS, each optional: yCond (n x width), xCond (n x xCondLen x
// width, or one broadcast row per sample with xCondLen 1), encoderKv (n x enc_len x width),
// copied so that a job can run off the JS thread. sample() reads them from its options
// object, forward() and attention() from positional arguments; window() computes them
// natively instead.
ConditionedWindow read_conditioning(const Napi::Value& y, const Napi::Value& x, int xlen, const Napi::Value& e, int n,
                                    const Autoregressive& m) {
  ConditionedWindow c;
  const size_t w = size_t(m.width()), enc = size_t(m.transformer().dims().enc_len);
  if (const float* p = optional_f32(y, n * w, "yCond")) c.y_cond.assign(p, p + n * w);
  if (const float* p = optional_f32(x, n * size_t(xlen) * w, "xCond")) {
    c.x_cond.assign(p, p + n * size_t(xlen) * w);
    c.x_cond_len = xlen;
  }
  if (const float* p = optional_f32(e, n * enc * w, "encoderKv")) c.encoder_kv.assign(p, p + n * enc * w);
  return c;
}

// The window inputs forward() and attention() share: (tokens, n, yCond, xCond, xCondLen,
// encoderKv) as positional arguments 0..5.
struct WindowInputs {
  int n = 0;
  std::shared_ptr<std::vector<int32_t>> tokens;
  std::shared_ptr<const ConditionedWindow> cond;
};

WindowInputs window_inputs(const Napi::CallbackInfo& info, const Autoregressive& m) {
  WindowInputs in;
  Napi::Int32Array tok = info[0].As<Napi::Int32Array>();
  in.n = info[1].As<Napi::Number>().Int32Value();
  const int L = m.len(), n = in.n;
  require(n > 0 && tok.ElementLength() == size_t(n) * L, "ERR_INVALID_ARGUMENT",
          "expected " + std::to_string(n) + " x " + std::to_string(L) + " tokens");
  const int xlen = info[4].IsNumber() ? info[4].As<Napi::Number>().Int32Value() : L;
  in.tokens = std::make_shared<std::vector<int32_t>>(tok.Data(), tok.Data() + tok.ElementLength());
  in.cond = std::make_shared<const ConditionedWindow>(read_conditioning(info[2], info[3], xlen, info[5], n, m));
  return in;
}

std::vector<int32_t> int32_vector(const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return {};
  require(v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array, "ERR_INVALID_ARGUMENT",
          "expected an Int32Array");
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  return std::vector<int32_t>(a.Data(), a.Data() + a.ElementLength());
}

// The sampling fields of a window job (sample() and window() share them).
WindowJob window_job(const Napi::Object& o, const Autoregressive& m) {
  WindowJob job;
  const int L = m.len();
  job.n = get_int(o, "n");
  job.prefix = get_int_or(o, "prefix", 0);
  job.end = get_int_or(o, "end", L);
  require(job.n > 0 && 0 <= job.prefix && job.prefix <= job.end && job.end <= L, "ERR_INVALID_ARGUMENT",
          "need 0 <= prefix <= end <= " + std::to_string(L));
  job.tokens = int32_vector(o.Get("tokens"));
  require(job.tokens.size() == size_t(job.n) * L, "ERR_INVALID_ARGUMENT", "tokens must be n x context");
  job.forced = int32_vector(o.Get("forced"));
  job.params.temperature = float(get_number_or(o, "temperature", 1.0));
  job.params.top_k = get_int_or(o, "topK", 0);
  job.params.top_p = float(get_number_or(o, "topP", 0.0));
  job.seed = uint64_t(get_number_or(o, "seed", 0));
  job.stream = uint32_t(get_number_or(o, "stream", 0));
  job.sample_offset = uint32_t(get_number_or(o, "sampleOffset", 0));
  job.record_logits = get_bool_or(o, "recordLogits", false);
  job.record_prefix_logits = get_bool_or(o, "recordPrefixLogits", false);
  job.prefill_chunk = std::max(0, get_int_or(o, "prefillChunk", 0));
  return job;
}

Finisher sample_result(std::shared_ptr<WindowResult> r, bool rec, bool rec_prefix) {
  return [r, rec, rec_prefix](Napi::Env env) -> Napi::Value {
    Napi::Object out = Napi::Object::New(env);
    Napi::Int32Array t = Napi::Int32Array::New(env, r->tokens.size());
    std::copy(r->tokens.begin(), r->tokens.end(), t.Data());
    out.Set("tokens", t);
    if (rec) out.Set("logits", adopt(env, std::move(r->logits)));
    if (rec_prefix) out.Set("prefixLogits", adopt(env, std::move(r->prefix_logits)));
    return out;
  };
}

class PriorBinding : public Napi::ObjectWrap<PriorBinding> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Prior",
                       {InstanceMethod("forward", &PriorBinding::Forward),
                        InstanceMethod("encodeLyrics", &PriorBinding::EncodeLyrics),
                        InstanceMethod("labels", &PriorBinding::Labels),
                        InstanceMethod("condition", &PriorBinding::Condition),
                        InstanceMethod("sample", &PriorBinding::Sample),
                        InstanceMethod("attention", &PriorBinding::Attention),
                        InstanceMethod("window", &PriorBinding::Window),
                        InstanceMethod("backend", &PriorBinding::Backend),
                        InstanceMethod("dispose", &PriorBinding::Dispose)});
  }

  explicit PriorBinding(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PriorBinding>(info) {
    guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Object plan = info[0].As<Napi::Object>();
      std::shared_ptr<MappedFile> file;
      if (plan.Get("file").IsString()) file = std::make_shared<MappedFile>(plan.Get("file").ToString());
      auto state = std::make_shared<PriorState>();
      state->store = std::make_shared<WeightStore>(file);
      state->model.prior = build_autoregressive(*state->store, plan.Get("prior").As<Napi::Object>(), "prior");
      if (plan.Get("lyricEncoder").IsObject()) {
        Napi::Object le = plan.Get("lyricEncoder").As<Napi::Object>();
        auto enc = std::make_unique<LyricEncoder>();
        enc->body = build_autoregressive(*state->store, le.Get("body").As<Napi::Object>(), "prime_prior");
        enc->out_width = get_int(le, "outWidth");
        enc->proj = linear(*state->store, le.Get("proj").As<Napi::Object>(), enc->body->width(), enc->out_width, "prime_state_proj");
        enc->ln = norm(*state->store, le.Get("ln").As<Napi::Object>(), enc->out_width, "prime_state_ln");
        state->model.lyrics = std::move(enc);
      }
      if (plan.Get("labels").IsObject()) {
        Napi::Object lo = plan.Get("labels").As<Napi::Object>();
        auto lc = std::make_unique<LabelConditioner>();
        lc->width = state->model.prior->width();
        lc->max_bow_genre_size = get_int(lo, "maxBowGenreSize");
        lc->n_time = get_int(lo, "nTime");
        lc->artist_emb = state->store->matrix(lo.Get("artistEmb"), get_int(lo, "artistBins"), lc->width, "y_emb.artist_emb.emb.weight");
        lc->genre_emb = state->store->matrix(lo.Get("genreEmb"), get_int(lo, "genreBins"), lc->width, "y_emb.bow_genre_emb.emb.weight");
        if (lo.Get("timing").IsObject()) {
          Napi::Object to = lo.Get("timing").As<Napi::Object>();
          const int tb = get_int(to, "tBins");
          lc->timing = true;
          lc->total_length = range_embedding(*state->store, to.Get("totalLength").As<Napi::Object>(), tb, lc->width, "y_emb.total_length_emb");
          lc->absolute_pos = range_embedding(*state->store, to.Get("absolutePos").As<Napi::Object>(), tb, lc->width, "y_emb.absolute_pos_emb");
          lc->relative_pos = range_embedding(*state->store, to.Get("relativePos").As<Napi::Object>(), tb, lc->width, "y_emb.relative_pos_emb");
        }
        state->model.labels = std::move(lc);
      }
      if (plan.Get("conditioner").IsObject()) {
        Napi::Object co = plan.Get("conditioner").As<Napi::Object>();
        auto uc = std::make_unique<UpsamplerConditioner>();
        uc->width = state->model.prior->width();
        uc->bins = get_int(co, "bins");
        uc->x_emb = state->store->matrix(co.Get("xEmb"), uc->bins, uc->width, "conditioner_blocks.0.x_emb.weight");
        uc->stack = build_conv_stack(co.Get("stack").As<Napi::Object>(), file.get());
        uc->ln = norm(*state->store, co.Get("ln").As<Napi::Object>(), uc->width, "conditioner_blocks.0.ln");
        state->model.upsampler = std::move(uc);
      }
      state->file = file;
      const std::string backend = plan.Get("backend").IsString() ? plan.Get("backend").ToString().Utf8Value() : "cpu";
      if (backend == "cuda") {
        CudaPriorOptions o;
        o.name = plan.Get("file").IsString() ? plan.Get("file").ToString().Utf8Value() : std::string("a prior");
        o.samples = get_int_or(plan, "samples", 1);
        o.kv_f16 = get_bool_or(plan, "kvF16", false);
        std::unique_ptr<CudaVQLevelWeights> cond;
        if (state->model.upsampler) {
          // The conditioner's stack on the device: its x_emb rows are the table gathered first.
          const UpsamplerConditioner& uc = *state->model.upsampler;
          Napi::Object stack = plan.Get("conditioner").As<Napi::Object>().Get("stack").As<Napi::Object>();
          std::vector<float> table(size_t(uc.bins) * uc.width);
          for (int r = 0; r < uc.bins; ++r) uc.x_emb.row_f32(r, table.data() + size_t(r) * uc.width);
          cond = std::make_unique<CudaVQLevelWeights>(
              cuda_stack_weights(stack, table, uc.bins, uc.width, stack_upsampling(stack), file.get()));
        }
        state->runner = make_cuda_prior_runner(state->model, o, cond.get());
      } else {
        require(backend == "cpu", "ERR_INVALID_ARGUMENT", "unknown backend \"" + backend + "\"");
        state->runner = make_cpu_prior_runner(*state->model.prior);
      }
      state_ = state;
      return info.Env().Undefined();
    });
  }

 private:
  std::shared_ptr<const PriorState> state(Napi::Env env) {
    if (!state_) throw make_js_error(env, "ERR_DISPOSED", "this prior has been disposed");
    return state_;
  }

  // forward(tokens, n, yCond|null, xCond|null, xCondLen, encoderKv|null, record, onProgress?, abort?)
  //   -> Promise<{logits, input?, layers?}>. `record` (the transformer input and every
  //   layer's output, for comparison with the original) is a CPU-engine feature: it runs
  //   there whatever the backend.
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto st = state(info.Env());
      const WindowInputs in = window_inputs(info, *st->model.prior);
      const bool record = info[6].IsBoolean() && info[6].As<Napi::Boolean>().Value();
      return start_async_job(
          info.Env(),
          [st, in, record](Progress& progress) -> Finisher {
            const Autoregressive& m = *st->model.prior;
            const int L = m.len(), w = m.width(), n = in.n;
            auto out = std::make_shared<std::vector<float>>();
            auto input = std::make_shared<std::vector<float>>(record ? size_t(L) * w : 0);
            auto layers = std::make_shared<std::vector<float>>(record ? size_t(m.transformer().depth()) * L * w : 0);
            if (record) {
              out->resize(size_t(n) * L * (m.encode_only() ? w : m.bins()));
              const ConditionedWindow& c = *in.cond;
              m.forward(in.tokens->data(), n, c.y(), c.x(), c.x_cond_len, c.enc(), out->data(), ThreadPool::global(),
                        progress, input->data(), layers->data());
            } else {
              *out = st->runner->forward(*in.cond, in.tokens->data(), n, progress);
            }
            return [out, input, layers, record](Napi::Env env) -> Napi::Value {
              Napi::Object o = Napi::Object::New(env);
              o.Set("logits", adopt(env, std::move(*out)));
              if (record) {
                o.Set("input", adopt(env, std::move(*input)));
                o.Set("layers", adopt(env, std::move(*layers)));
              }
              return o;
            };
          },
          info[7], info[8]);
    });
  }

  // attention(tokens, n, yCond, xCond|null, xCondLen, encoderKv|null, layer, head, abort?)
  //   -> Promise<Float32Array n x len x keys>: one head's attention probabilities in a full
  //   forward (lyrics alignment).
  Napi::Value Attention(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto st = state(info.Env());
      const Autoregressive& m = *st->model.prior;
      const WindowInputs in = window_inputs(info, m);
      const int layer = info[6].As<Napi::Number>().Int32Value(), head = info[7].As<Napi::Number>().Int32Value();
      const Transformer& t = m.transformer();
      require(layer >= 0 && layer < t.depth() && head >= 0 && head < t.dims().heads, "ERR_INVALID_ARGUMENT",
              "attention layer/head out of range");
      return start_async_job(
          info.Env(),
          [st, in, layer, head](Progress& progress) -> Finisher {
            auto probs = std::make_shared<std::vector<float>>(
                st->runner->attention(*in.cond, in.tokens->data(), in.n, layer, head, progress));
            return [probs](Napi::Env env) -> Napi::Value { return adopt(env, std::move(*probs)); };
          },
          info.Env().Undefined(), info[8]);
    });
  }

  // encodeLyrics(tokens (n x n_tokens), n, onProgress?, abort?) -> Promise<Float32Array encoder_kv>
  Napi::Value EncodeLyrics(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto st = state(info.Env());
      require(st->model.lyrics != nullptr, "ERR_MODEL_KIND", "this prior has no lyric encoder");
      Napi::Int32Array tok = info[0].As<Napi::Int32Array>();
      const int n = info[1].As<Napi::Number>().Int32Value();
      const int L = st->model.lyrics->body->len();
      require(n > 0 && tok.ElementLength() == size_t(n) * L, "ERR_INVALID_ARGUMENT",
              "expected " + std::to_string(n) + " x " + std::to_string(L) + " lyric tokens");
      auto tokens = std::make_shared<std::vector<int32_t>>(tok.Data(), tok.Data() + tok.ElementLength());
      return start_async_job(
          info.Env(),
          [st, tokens, n](Progress& progress) -> Finisher {
            const LyricEncoder& e = *st->model.lyrics;
            auto out = std::make_shared<std::vector<float>>(size_t(n) * e.body->len() * e.out_width);
            e.forward(tokens->data(), n, out->data(), ThreadPool::global(), progress);
            return [out](Napi::Env env) -> Napi::Value { return adopt(env, std::move(*out)); };
          },
          info[2], info[3]);
    });
  }

  // labels(y (n x label_len), n) -> {yCond (n x w), xCond (n x n_time x w) | null}
  Napi::Value Labels(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto st = state(info.Env());
      require(st->model.labels != nullptr, "ERR_MODEL_KIND", "this prior has no label conditioner");
      const LabelConditioner& lc = *st->model.labels;
      Napi::Int32Array y = info[0].As<Napi::Int32Array>();
      const int n = info[1].As<Napi::Number>().Int32Value();
      require(n > 0 && y.ElementLength() == size_t(n) * lc.label_len(), "ERR_INVALID_ARGUMENT",
              "expected " + std::to_string(n) + " label rows of " + std::to_string(lc.label_len()));
      Napi::Float32Array yc = Napi::Float32Array::New(info.Env(), size_t(n) * lc.width);
      Napi::Object o = Napi::Object::New(info.Env());
      if (lc.timing) {
        Napi::Float32Array xc = Napi::Float32Array::New(info.Env(), size_t(n) * lc.n_time * lc.width);
        lc.forward(y.Data(), n, yc.Data(), xc.Data());
        o.Set("xCond", xc);
      } else {
        lc.forward(y.Data(), n, yc.Data(), nullptr);
        o.Set("xCond", info.Env().Null());
      }
      o.Set("yCond", yc);
      return o;
    });
  }

  // condition(zUpper (n x t), n, t, onProgress?, abort?) -> Promise<Float32Array x_cond>
  Napi::Value Condition(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto st = state(info.Env());
      require(st->model.upsampler != nullptr, "ERR_MODEL_KIND", "this prior is not an upsampler");
      Napi::Int32Array z = info[0].As<Napi::Int32Array>();
      const int n = info[1].As<Napi::Number>().Int32Value();
      const int t = info[2].As<Napi::Number>().Int32Value();
      require(n > 0 && t > 0 && z.ElementLength() == size_t(n) * t, "ERR_INVALID_ARGUMENT", "codes length does not match n * t");
      auto codes = std::make_shared<std::vector<int32_t>>(z.Data(), z.Data() + z.ElementLength());
      return start_async_job(
          info.Env(),
          [st, codes, n, t](Progress& progress) -> Finisher {
            int len = 0;
            auto out = std::make_shared<std::vector<float>>(
                st->model.upsampler->forward(codes->data(), n, t, ThreadPool::global(), progress, len));
            return [out](Napi::Env env) -> Napi::Value { return adopt(env, std::move(*out)); };
          },
          info[3], info[4]);
    });
  }

  // sample(opts, onProgress?, abort?) -> Promise<{tokens, logits?, prefixLogits?}>
  // opts: {tokens (n x len, positions < prefix read), n, prefix, end, yCond, xCond?, xCondLen?,
  //        encoderKv?, temperature, topK, topP, seed, stream, sampleOffset, forced?,
  //        recordLogits?, recordPrefixLogits?, prefillChunk?}
  // The conditioning arrays come from JS here (tests, and callers that condition themselves);
  // window() below computes them natively from int32 rows.
  Napi::Value Sample(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto st = state(info.Env());
      const Autoregressive& m = *st->model.prior;
      Napi::Object o = info[0].As<Napi::Object>();
      auto job = std::make_shared<WindowJob>(window_job(o, m));
      auto cond = std::make_shared<const ConditionedWindow>(
          read_conditioning(o.Get("yCond"), o.Get("xCond"), get_int_or(o, "xCondLen", m.len()), o.Get("encoderKv"), job->n, m));
      return start_async_job(
          info.Env(),
          [st, job, cond](Progress& progress) -> Finisher {
            auto r = std::make_shared<WindowResult>(st->runner->sample(*cond, *job, progress));
            return sample_result(r, job->record_logits, job->record_prefix_logits);
          },
          info[1], info[2]);
    });
  }

  // window(job, onProgress?, abort?): one window job with native conditioning.
  // job: {kind: 'sample' | 'forward' | 'attention', n, tokens (n x len), labels? (n x label_len
  //       int32), upper? (n x t codes of the level above), lyrics? (n x n_tokens, lyric encoder
  //       models), musicOffset? (combined lyric models: where the music positions start),
  //       and for 'sample' the fields of sample() above; for 'attention' layer and head}
  //   -> sample: {tokens, logits?, prefixLogits?}; forward: {logits}; attention: {attention}
  Napi::Value Window(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto st = state(info.Env());
      const Autoregressive& m = *st->model.prior;
      Napi::Object o = info[0].As<Napi::Object>();
      const std::string kind = o.Get("kind").IsString() ? o.Get("kind").ToString().Utf8Value() : "sample";
      require(kind == "sample" || kind == "forward" || kind == "attention", "ERR_INVALID_ARGUMENT",
              "window kind must be sample, forward or attention");
      auto job = std::make_shared<WindowJob>(window_job(o, m));
      auto wc = std::make_shared<WindowConditioning>();
      wc->n = job->n;
      wc->labels = int32_vector(o.Get("labels"));
      wc->upper = int32_vector(o.Get("upper"));
      wc->lyrics = int32_vector(o.Get("lyrics"));
      wc->music_offset = get_int_or(o, "musicOffset", 0);
      const int layer = get_int_or(o, "layer", -1), head = get_int_or(o, "head", 0);
      return start_async_job(
          info.Env(),
          [st, job, wc, kind, layer, head](Progress& progress) -> Finisher {
            Progress quiet;  // conditioning is short next to the window: no progress of its own
            quiet.cancelled = progress.cancelled;
            const ConditionedWindow cond =
                condition_window(st->model, *wc, ThreadPool::global(), quiet, st->runner->conditioning_hooks());
            if (kind == "forward") {
              auto out = std::make_shared<std::vector<float>>(st->runner->forward(cond, job->tokens.data(), job->n, progress));
              return [out](Napi::Env env) -> Napi::Value {
                Napi::Object r = Napi::Object::New(env);
                r.Set("logits", adopt(env, std::move(*out)));
                return r;
              };
            }
            if (kind == "attention") {
              auto out = std::make_shared<std::vector<float>>(
                  st->runner->attention(cond, job->tokens.data(), job->n, layer, head, progress));
              return [out](Napi::Env env) -> Napi::Value {
                Napi::Object r = Napi::Object::New(env);
                r.Set("attention", adopt(env, std::move(*out)));
                return r;
              };
            }
            auto r = std::make_shared<WindowResult>(st->runner->sample(cond, *job, progress));
            return sample_result(r, job->record_logits, job->record_prefix_logits);
          },
          info[1], info[2]);
    });
  }

  // backend() -> {backend: 'cpu' | 'cuda', description, deviceBytes}
  Napi::Value Backend(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto st = state(info.Env());
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("backend", st->runner->backend());
      o.Set("description", st->runner->describe());
      o.Set("deviceBytes", double(st->runner->device_bytes()));
      return o;
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    state_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<const PriorState> state_;
};

}  // namespace

Napi::Function init_prior_binding(Napi::Env env) { return PriorBinding::Init(env); }

}  // namespace jb
