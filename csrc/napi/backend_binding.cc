#include "backend_binding.h"

#include "../backend/cuda_loader.h"
#include "../core/thread_pool.h"
#include "../cpu/cpu_features.h"
#include "js_error.h"

namespace jb {

Napi::Value backend_info_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);

  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("available", true);
  cpu.Set("isa", isa_name(active_isa()));
  cpu.Set("detectedIsa", isa_name(detected_isa()));
  cpu.Set("threads", ThreadPool::global().size());
  out.Set("cpu", cpu);

  const CudaBackendStatus& s = cuda_backend_status();
  Napi::Object cuda = Napi::Object::New(env);
  cuda.Set("available", s.available);
  if (!s.available) cuda.Set("reason", s.reason);
  if (!s.library.empty()) cuda.Set("library", s.library);
  Napi::Array searched = Napi::Array::New(env, s.searched.size());
  for (size_t i = 0; i < s.searched.size(); ++i) searched.Set(uint32_t(i), s.searched[i]);
  cuda.Set("searched", searched);
  cuda.Set("libraryLoaded", s.library_loaded);
  if (!s.source.empty()) cuda.Set("source", s.source);
  if (!s.package_dir.empty()) {
    // The CUDA variant package module resolution found (also when its version was refused).
    Napi::Object pkg = Napi::Object::New(env);
    pkg.Set("name", s.package_name);
    pkg.Set("version", s.package_version);
    pkg.Set("dir", s.package_dir);
    pkg.Set("expectedVersion", s.main_version);
    cuda.Set("package", pkg);
  }
  cuda.Set("expectedApiVersion", double(JB_CUDA_API_VERSION));
  if (s.api_version) cuda.Set("apiVersion", double(s.api_version));
  if (s.library_loaded) {
    cuda.Set("buildInfo", s.build_info);
    cuda.Set("capabilities", double(s.capabilities));
    cuda.Set("runtimeVersion", s.runtime_version);
    cuda.Set("driverVersion", s.driver_version);
  }
  Napi::Array devices = Napi::Array::New(env, s.devices.size());
  for (size_t i = 0; i < s.devices.size(); ++i) {
    const CudaDeviceDesc& d = s.devices[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", d.index);
    o.Set("name", d.name);
    o.Set("computeCapability", std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor));
    o.Set("multiprocessors", d.multiprocessors);
    o.Set("totalBytes", double(d.total_bytes));
    o.Set("supported", d.supported);
    devices.Set(uint32_t(i), o);
  }
  cuda.Set("devices", devices);
  out.Set("cuda", cuda);
  return out;
}

Napi::Value cuda_self_test_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int device = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  const CudaBackendStatus& s = cuda_backend_status();
  const jb_cuda_api* api = cuda_api();
  if (!api) throw make_js_error(env, "ERR_BACKEND_UNAVAILABLE", "the CUDA backend library is not loaded: " + s.reason);
  const int st = api->self_test(device);
  if (st != JB_CUDA_OK) {
    throw make_js_error(env, st == JB_CUDA_ERR_OUT_OF_MEMORY ? "ERR_OUT_OF_MEMORY" : "ERR_NATIVE",
                        std::string("CUDA self-test on device ") + std::to_string(device) + " failed: " + api->last_error());
  }
  return Napi::String::New(env, "self-test kernel ran on device " + std::to_string(device) + " (" + s.build_info + ")");
}

}  // namespace jb
