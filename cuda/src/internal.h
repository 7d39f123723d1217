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


namespace jb {
namespace cuda {

// The model-level entries (include/jukebox_cuda.h, API version 2): the prior in
// src/prior_model.cu, the VQ-VAE decoder in src/vqvae_model.cu. Each returns a status and
// records the reason, like every entry of the table.
int prior_create(jb_cuda_context* ctx, const jb_cuda_prior_desc* desc, jb_cuda_prior** out);
void prior_free(jb_cuda_prior* prior);
uint64_t prior_bytes(const jb_cuda_prior* prior);
int prior_window(jb_cuda_prior* prior, const jb_cuda_window_args* args);
int prior_forward(jb_cuda_prior* prior, const jb_cuda_forward_args* args);
int vqvae_create(jb_cuda_context* ctx, const jb_cuda_vqvae_desc* desc, jb_cuda_vqvae** out);
void vqvae_free(jb_cuda_vqvae* vq);
int vqvae_decode(jb_cuda_vqvae* vq, const jb_cuda_vq_decode_args* args);
// Whether the model entries are implemented in this build (their capability bits).
bool prior_model_implemented();
bool vqvae_model_implemented();

}  // namespace cuda
}  // namespace jb
