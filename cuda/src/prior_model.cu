// Placeholder until the model path lands: every entry says it is not implemented.
#include "internal.h"

namespace jb {
namespace cuda {
bool prior_model_implemented() { return false; }
int prior_create(jb_cuda_context*, const jb_cuda_prior_desc*, jb_cuda_prior** out) {
  if (out) *out = nullptr;
  return fail(JB_CUDA_ERR_NOT_IMPLEMENTED, "prior_create is not implemented in this build");
}
void prior_free(jb_cuda_prior*) {}
uint64_t prior_bytes(const jb_cuda_prior*) { return 0; }
int prior_window(jb_cuda_prior*, const jb_cuda_window_args*) { return fail(JB_CUDA_ERR_NOT_IMPLEMENTED, "prior_window is not implemented"); }
int prior_forward(jb_cuda_prior*, const jb_cuda_forward_args*) { return fail(JB_CUDA_ERR_NOT_IMPLEMENTED, "prior_forward is not implemented"); }
}  // namespace cuda
}  // namespace jb
