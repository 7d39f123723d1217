// Module entry: the classes and functions lib/native.ts loads.
#include <napi.h>

#include "../backend/cuda_device.h"
#include "async_job.h"
#include "backend_binding.h"
#include "kernels_binding.h"
#include "prior_binding.h"
#include "vqvae_binding.h"

namespace {

// cudaModelSupport() -> {ok, emulated, reason?}: whether the loaded CUDA library can run the
// models (lib/backend.ts decides from it which backend a model gets).
Napi::Value cuda_model_support_js(const Napi::CallbackInfo& info) {
  const jb::CudaModelSupport s = jb::cuda_model_support();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("ok", s.ok);
  o.Set("emulated", s.emulated);
  if (!s.reason.empty()) o.Set("reason", s.reason);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("AbortFlag", jb::AbortFlag::Init(env));
  exports.Set("VQVAE", jb::init_vqvae_binding(env));
  exports.Set("Prior", jb::init_prior_binding(env));
  exports.Set("kernels", jb::init_kernels_binding(env));
  exports.Set("backendInfo", Napi::Function::New(env, jb::backend_info_js));
  exports.Set("cudaModelSupport", Napi::Function::New(env, cuda_model_support_js));
  exports.Set("cudaSelfTest", Napi::Function::New(env, jb::cuda_self_test_js));
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  return exports;
}

}  // namespace

NODE_API_MODULE(jukebox, Init)
