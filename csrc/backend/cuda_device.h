// What the addon's CUDA runners share: whether the loaded library can run models (and why
// not), the mapping of its statuses to the engine's error codes, and a device context owned
// by one model (its own stream and buffers; destroying it frees the model's device memory).
#pragma once
#include <cstdint>
#include <string>

#include "../core/progress.h"
#include "cuda_loader.h"

namespace jb {

struct CudaModelSupport {
  bool ok = false;        // the library implements the model ABI and there is a device to run on
  bool emulated = false;  // the emulation build (cuda/emu): runs only when asked for by name
  std::string reason;     // why not (empty when ok)
};
CudaModelSupport cuda_model_support();

// Throws jb::Error with the engine's code for a library status (OUT_OF_MEMORY ->
// ERR_OUT_OF_MEMORY, ABORTED -> ERR_ABORTED, ...) and the library's message, prefixed by what.
[[noreturn]] void throw_cuda_status(int status, const std::string& what);

class CudaContext {
 public:
  explicit CudaContext(int device = 0);
  ~CudaContext();
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;
  const jb_cuda_api& api() const { return *api_; }
  jb_cuda_context* get() const { return ctx_; }
  std::string device_name() const { return device_name_; }

 private:
  const jb_cuda_api* api_ = nullptr;
  jb_cuda_context* ctx_ = nullptr;
  std::string device_name_;
};

// The library's progress callback (jb_cuda_progress_fn) over the engine's Progress, passed as
// `user`: reports, and returns nonzero when the job was cancelled. A jb::Error must not
// cross the C ABI, so cancellation is returned as a flag and a failing report is ignored.
int cuda_progress(void* user, double done, double total);

// Maps the engine's weight dtype to the ABI's.
int cuda_dtype_of(int engine_dtype, const std::string& tensor);

}  // namespace jb
