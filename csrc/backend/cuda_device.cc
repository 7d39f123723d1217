#include "cuda_device.h"

#include <cstdio>
#include <cstdlib>

#include "../core/error.h"
#include "../cpu/matmul.h"

namespace jb {

CudaModelSupport cuda_model_support() {
  CudaModelSupport r;
  const CudaBackendStatus& s = cuda_backend_status();
  r.emulated = (s.capabilities & JB_CUDA_CAP_EMULATED) != 0;
  if (!s.library_loaded) {
    r.reason = s.reason.empty() ? "the CUDA backend library is not loaded" : s.reason;
    return r;
  }
  const uint64_t missing = JB_CUDA_CAPS_GENERATE & ~s.capabilities;
  if (missing) {
    r.reason = "the CUDA backend library " + s.library + " does not implement the model path (missing capabilities 0x" +
               [&] {
                 char buf[32];
                 std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(missing));
                 return std::string(buf);
               }() +
               "); rebuild it (npm run build:cuda)";
    return r;
  }
  if (!r.emulated && !s.available) {
    r.reason = s.reason;
    return r;
  }
  bool device = false;
  for (const auto& d : s.devices) device = device || d.supported;
  if (!device) {
    r.reason = "no supported CUDA device";
    return r;
  }
  r.ok = true;
  return r;
}

void throw_cuda_status(int status, const std::string& what) {
  const jb_cuda_api* api = cuda_api();
  const std::string msg = what + ": " + (api && api->last_error()[0] ? std::string(api->last_error()) : "CUDA error " + std::to_string(status));
  switch (status) {
    case JB_CUDA_ERR_OUT_OF_MEMORY: fail("ERR_OUT_OF_MEMORY", msg);
    case JB_CUDA_ERR_ABORTED: fail("ERR_ABORTED", "aborted");
    case JB_CUDA_ERR_INVALID_ARGUMENT: fail("ERR_INVALID_ARGUMENT", msg);
    case JB_CUDA_ERR_NO_DRIVER:
    case JB_CUDA_ERR_NO_DEVICE:
    case JB_CUDA_ERR_UNSUPPORTED_DEVICE:
    case JB_CUDA_ERR_NOT_IMPLEMENTED: fail("ERR_BACKEND_UNAVAILABLE", msg);
    default: fail("ERR_NATIVE", msg);
  }
}

CudaContext::CudaContext(int device) {
  const CudaModelSupport sup = cuda_model_support();
  if (!sup.ok) fail("ERR_BACKEND_UNAVAILABLE", "the CUDA backend cannot run here: " + sup.reason);
  api_ = cuda_api();
  const int st = api_->context_create(device, &ctx_);
  if (st != JB_CUDA_OK) throw_cuda_status(st, "creating a CUDA context on device " + std::to_string(device));
  jb_cuda_device_info info{};
  if (api_->device_info(device, &info) == JB_CUDA_OK) device_name_ = info.name;
}

CudaContext::~CudaContext() {
  if (ctx_) api_->context_destroy(ctx_);
}

int cuda_progress(void* user, double done, double total) {
  Progress& p = *static_cast<Progress*>(user);
  p.total = total;
  p.done = done;
  try {
    if (p.report) p.report(done, total);
  } catch (...) {
  }
  return p.cancelled && p.cancelled->load(std::memory_order_relaxed) ? 1 : 0;
}

int cuda_dtype_of(int engine_dtype, const std::string& tensor) {
  switch (static_cast<DType>(engine_dtype)) {
    case DType::F32: return JB_CUDA_DTYPE_F32;
    case DType::F16: return JB_CUDA_DTYPE_F16;
    case DType::BF16: return JB_CUDA_DTYPE_BF16;
    default: break;
  }
  fail("ERR_DTYPE", tensor + ": this weight dtype runs on the CPU backend only (use --backend cpu, or convert the model to f16/f32)");
}

}  // namespace jb
