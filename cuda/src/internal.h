// Shared by the library's translation units: error reporting through last_error() and the
// mapping of CUDA runtime errors to jb_cuda_status.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>
#include <mutex>
#include <set>
#include <string>

#include "jukebox_cuda.h"

// A context (include/jukebox_cuda.h): one device, one non-blocking stream, its buffers and
// its models. Here rather than in api.cc so the model entries (prior_model.cu,
// vqvae_model.cu) reach the stream, the device and the locks.
struct jb_cuda_context {
  int device = 0;
  std::string device_name;
  int multiprocessors = 1;
  cudaStream_t stream = nullptr;
  std::mutex mutex;  // the bookkeeping below (buffers, bytes, models); held briefly
  std::set<jb_cuda_buffer*> buffers;
  uint64_t bytes = 0;     // device bytes of the buffers and models of this context
  float* work = nullptr;  // kernels' workspace (flash-decoding partials), grown on demand
  size_t work_floats = 0;
  // Models created in this context; context_destroy frees what is still listed (through
  // prior_free / vqvae_free, which take themselves off the list).
  std::set<jb_cuda_prior*> priors;
  std::set<jb_cuda_vqvae*> vqvaes;
  // One job at a time per context (a window, a forward, a decode): held for the whole job,
  // apart from `mutex`, so a progress callback may still call memory_info.
  std::mutex job;
};

struct jb_cuda_buffer {
  jb_cuda_context* ctx = nullptr;
  void* ptr = nullptr;
  size_t bytes = 0;
  std::string what;
};

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
