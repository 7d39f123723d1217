// Placeholder until the model path lands: every entry says it is not implemented.
#include "internal.h"

namespace jb {
namespace cuda {
bool vqvae_model_implemented() { return false; }
int vqvae_create(jb_cuda_context*, const jb_cuda_vqvae_desc*, jb_cuda_vqvae** out) {
  if (out) *out = nullptr;
  return fail(JB_CUDA_ERR_NOT_IMPLEMENTED, "vqvae_create is not implemented in this build");
}
void vqvae_free(jb_cuda_vqvae*) {}
int vqvae_decode(jb_cuda_vqvae*, const jb_cuda_vq_decode_args*) { return fail(JB_CUDA_ERR_NOT_IMPLEMENTED, "vqvae_decode is not implemented"); }
}  // namespace cuda
}  // namespace jb
