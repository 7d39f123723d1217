// JS class VQVAE: built from a layer plan (lib/vqvae/layout.ts), runs encode/decode as
// async jobs. dispose() drops the weights at once; a job in flight keeps its own
// reference until it settles.
#include "vqvae_binding.h"

#include <memory>
#include <string>

#include "../backend/cuda_vqvae_runner.h"
#include "cuda_stack.h"
#include "../model/vqvae.h"
#include "async_job.h"
#include "js_error.h"
#include "weights.h"

namespace jb {

namespace {

class VQVAEBinding : public Napi::ObjectWrap<VQVAEBinding> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "VQVAE",
                       {InstanceMethod("encode", &VQVAEBinding::Encode),
                        InstanceMethod("decode", &VQVAEBinding::Decode),
                        InstanceMethod("encodeFlops", &VQVAEBinding::EncodeFlops),
                        InstanceMethod("decodeFlops", &VQVAEBinding::DecodeFlops),
                        InstanceMethod("backend", &VQVAEBinding::Backend),
                        InstanceMethod("dispose", &VQVAEBinding::Dispose)});
  }

  explicit VQVAEBinding(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VQVAEBinding>(info) {
    guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Object plan = info[0].As<Napi::Object>();
      std::unique_ptr<MappedFile> file;
      if (plan.Get("file").IsString()) file = std::make_unique<MappedFile>(plan.Get("file").ToString());
      std::vector<VQStack> enc, dec;
      std::vector<Codebook> books;
      std::vector<int> hops;
      Napi::Array encs = plan.Get("encoders").As<Napi::Array>();
      Napi::Array decs = plan.Get("decoders").As<Napi::Array>();
      Napi::Array cbs = plan.Get("codebooks").As<Napi::Array>();
      Napi::Array hl = plan.Get("hopLengths").As<Napi::Array>();
      const std::string backend = plan.Get("backend").IsString() ? plan.Get("backend").ToString().Utf8Value() : "cpu";
      require(backend == "cpu" || backend == "cuda", "ERR_INVALID_ARGUMENT", "unknown backend \"" + backend + "\"");
      const bool cuda = backend == "cuda";
      std::vector<CudaVQLevelWeights> cuda_levels;
      for (uint32_t l = 0; l < encs.Length(); ++l) {
        enc.push_back(build_conv_stack(encs.Get(l).As<Napi::Object>(), file.get()));
        dec.push_back(build_conv_stack(decs.Get(l).As<Napi::Object>(), file.get()));
        Napi::Object cb = cbs.Get(l).As<Napi::Object>();
        const int bins = get_int(cb, "bins"), width = get_int(cb, "width");
        const std::vector<float> k = read_weight(cb.Get("weight"), file.get(), size_t(bins) * width,
                                                 "bottleneck.level_blocks." + std::to_string(l) + ".k");
        books.emplace_back(k.data(), bins, width);
        hops.push_back(hl.Get(l).As<Napi::Number>().Int32Value());
        if (cuda) cuda_levels.push_back(cuda_stack_weights(decs.Get(l).As<Napi::Object>(), k, bins, width, hops.back(), file.get()));
      }
      model_ = std::make_shared<VQVAE>(std::move(enc), std::move(dec), std::move(books), std::move(hops));
      if (cuda) {
        const std::string name = plan.Get("file").IsString() ? plan.Get("file").ToString().Utf8Value() : std::string("a VQ-VAE");
        cuda_ = std::make_shared<CudaVQDecoder>(std::move(cuda_levels), name);
      }
      return info.Env().Undefined();
    });
  }

 private:
  std::shared_ptr<const VQVAE> model(Napi::Env env) {
    if (!model_) throw make_js_error(env, "ERR_DISPOSED", "this VQ-VAE has been disposed");
    return model_;
  }

  // encode(audio: Float32Array (n*t), n, t, start, end, onProgress?, abort?) -> Promise<Int32Array[]>
  Napi::Value Encode(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto m = model(info.Env());
      Napi::Float32Array a = info[0].As<Napi::Float32Array>();
      const int n = info[1].As<Napi::Number>().Int32Value();
      const int t = info[2].As<Napi::Number>().Int32Value();
      const int start = info[3].As<Napi::Number>().Int32Value();
      const int end = info[4].As<Napi::Number>().Int32Value();
      require(n > 0 && t > 0 && a.ElementLength() == size_t(n) * t, "ERR_INVALID_ARGUMENT",
              "audio length does not match n * t");
      auto audio = std::make_shared<std::vector<float>>(a.Data(), a.Data() + a.ElementLength());
      return start_async_job(
          info.Env(),
          [m, audio, n, t, start, end](Progress& progress) -> Finisher {
            auto codes = std::make_shared<std::vector<std::vector<int32_t>>>(
                m->encode(audio->data(), n, t, start, end, ThreadPool::global(), progress));
            return [codes](Napi::Env env) -> Napi::Value {
              Napi::Array out = Napi::Array::New(env, codes->size());
              for (size_t i = 0; i < codes->size(); ++i) {
                auto& c = (*codes)[i];
                Napi::Int32Array arr = Napi::Int32Array::New(env, c.size());
                std::copy(c.begin(), c.end(), arr.Data());
                out.Set(uint32_t(i), arr);
              }
              return out;
            };
          },
          info[5], info[6]);
    });
  }

  // decode(codes: Int32Array (n*tl), n, tl, level, onProgress?, abort?) -> Promise<Float32Array>
  Napi::Value Decode(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto m = model(info.Env());
      Napi::Int32Array a = info[0].As<Napi::Int32Array>();
      const int n = info[1].As<Napi::Number>().Int32Value();
      const int tl = info[2].As<Napi::Number>().Int32Value();
      const int level = info[3].As<Napi::Number>().Int32Value();
      require(n > 0 && tl > 0 && a.ElementLength() == size_t(n) * tl, "ERR_INVALID_ARGUMENT",
              "codes length does not match n * t");
      auto codes = std::make_shared<std::vector<int32_t>>(a.Data(), a.Data() + a.ElementLength());
      std::shared_ptr<CudaVQDecoder> cuda = cuda_;
      return start_async_job(
          info.Env(),
          [m, cuda, codes, n, tl, level](Progress& progress) -> Finisher {
            auto audio = std::make_shared<Buffer<float>>(
                cuda ? cuda->decode(codes->data(), n, tl, level, progress)
                     : m->decode(codes->data(), n, tl, level, ThreadPool::global(), progress));
            const size_t len = size_t(n) * tl * m->hop_length(level);
            return [audio, len](Napi::Env env) -> Napi::Value {
              // Zero-copy: the ArrayBuffer adopts the native buffer.
              auto* holder = new Buffer<float>(std::move(*audio));
              Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
                  env, holder->data(), len * sizeof(float),
                  [](Napi::Env, void*, Buffer<float>* h) { delete h; }, holder);
              return Napi::Float32Array::New(env, len, ab, 0);
            };
          },
          info[4], info[5]);
    });
  }

  Napi::Value EncodeFlops(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto m = model(info.Env());
      return Napi::Number::New(
          info.Env(), m->encode_flops(info[0].As<Napi::Number>().Int32Value(),
                                      info[1].As<Napi::Number>().Int32Value(),
                                      info[2].As<Napi::Number>().Int32Value(),
                                      info[3].As<Napi::Number>().Int32Value()));
    });
  }

  Napi::Value DecodeFlops(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      auto m = model(info.Env());
      return Napi::Number::New(
          info.Env(), m->decode_flops(info[0].As<Napi::Number>().Int32Value(),
                                      info[1].As<Napi::Number>().Int32Value(),
                                      info[2].As<Napi::Number>().Int32Value()));
    });
  }

  // backend() -> {backend: 'cpu' | 'cuda', description}: where decode runs (encode: the CPU).
  Napi::Value Backend(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      model(info.Env());
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("backend", cuda_ ? "cuda" : "cpu");
      o.Set("description", cuda_ ? cuda_->describe() : std::string("CPU engine"));
      return o;
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    model_.reset();
    cuda_.reset();  // device memory goes when no job in flight holds it
    return info.Env().Undefined();
  }

  std::shared_ptr<const VQVAE> model_;
  std::shared_ptr<CudaVQDecoder> cuda_;
};

}  // namespace

Napi::Function init_vqvae_binding(Napi::Env env) { return VQVAEBinding::Init(env); }

}  // namespace jb
