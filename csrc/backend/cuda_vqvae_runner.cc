#include "cuda_vqvae_runner.h"

#include <string>

namespace jb {

CudaVQDecoder::CudaVQDecoder(std::vector<CudaVQLevelWeights> levels, std::string name, int device)
    : levels_(std::move(levels)), name_(std::move(name)), ctx_(device), models_(levels_.size(), nullptr) {}

CudaVQDecoder::~CudaVQDecoder() {
  for (jb_cuda_vqvae* m : models_)
    if (m) ctx_.api().vqvae_free(m);
}

Buffer<float> CudaVQDecoder::decode(const int32_t* z, int n, int t, int level, Progress& progress) {
  require(0 <= level && level < int(levels_.size()), "ERR_INVALID_ARGUMENT", "level " + std::to_string(level) + " out of range");
  require(n > 0 && t > 0, "ERR_INVALID_ARGUMENT", "no codes to decode");
  std::lock_guard<std::mutex> lock(mu_);
  const CudaVQLevelWeights& w = levels_[level];
  if (!models_[level]) {
    const std::string nm = name_ + " (decoder of level " + std::to_string(level) + ")";
    jb_cuda_vqvae_desc d{};
    d.name = nm.c_str();
    d.bins = w.bins;
    d.emb_width = w.emb_width;
    d.codebook = w.codebook.data();
    d.hop = w.hop;
    d.out_channels = w.out_channels;
    d.depth = int(w.layers.size());
    d.layers = w.layers.data();
    const int st = ctx_.api().vqvae_create(ctx_.get(), &d, &models_[level]);
    if (st != JB_CUDA_OK) {
      models_[level] = nullptr;
      throw_cuda_status(st, "loading " + nm + " onto " + ctx_.device_name());
    }
  }
  Buffer<float> out(size_t(n) * w.out_channels * size_t(t) * w.hop, "decoded audio");
  jb_cuda_vq_decode_args a{};
  a.n = n;
  a.t = t;
  a.codes = z;
  a.out = out.data();
  a.progress = &cuda_progress;
  a.progress_user = &progress;
  const int st = ctx_.api().vqvae_decode(models_[level], &a);
  if (st == JB_CUDA_ERR_INVALID_ARGUMENT) {
    // Codes outside the codebook are the caller's input: the same code as the CPU engine.
    const std::string msg = ctx_.api().last_error();
    if (msg.find("code") != std::string::npos) fail("ERR_CODES", msg);
  }
  if (st != JB_CUDA_OK) throw_cuda_status(st, "CUDA decode of " + name_ + " level " + std::to_string(level));
  return out;
}

}  // namespace jb
