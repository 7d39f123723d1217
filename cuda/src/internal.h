// Shared by the library's translation units: error reporting through last_error() and the
// mapping of CUDA runtime errors to jb_cuda_status.
#pragma once
#include <cuda_runtime_api.h>

#include <string>

#include "jukebox_cuda.h"

namespace jb {
namespace cuda {

// Records msg as this thread's last error and returns status (for `return fail(...)`).
int fail(int status, const std::string& msg);
// Maps a CUDA error to a status, records "<what>: <cuda error name>: <string>" and returns it.
int fail_cuda(cudaError_t err, const std::string& what);
void clear_error();

// Runs the self-test kernel on `device` (self_test.cu). Returns a status; records the reason.
int run_self_test(int device);

}  // namespace cuda
}  // namespace jb
