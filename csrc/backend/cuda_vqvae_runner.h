// The CUDA side of the VQ-VAE: one device decoder per level (codebook gather and the
// decoder stack, jb_cuda_vqvae_desc), made on a level's first decode and kept until
// dispose. Encoding stays on the CPU engine (it runs once per prompt, not per window).
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../core/buffer.h"
#include "../core/progress.h"
#include "cuda_device.h"

namespace jb {

// One level's decoder in the ABI's terms, with the fp32 arrays its desc points into.
// Move-only: `layers` point into `arrays`, whose buffers a move keeps and a copy would not.
struct CudaVQLevelWeights {
  CudaVQLevelWeights() = default;
  CudaVQLevelWeights(CudaVQLevelWeights&&) = default;
  CudaVQLevelWeights& operator=(CudaVQLevelWeights&&) = default;
  CudaVQLevelWeights(const CudaVQLevelWeights&) = delete;
  CudaVQLevelWeights& operator=(const CudaVQLevelWeights&) = delete;
  std::vector<std::vector<float>> arrays;  // owned weights and biases (stable addresses)
  std::vector<jb_cuda_vq_layer_desc> layers;
  std::vector<float> codebook;             // bins x emb_width
  int bins = 0, emb_width = 0, hop = 1, out_channels = 1;
};

class CudaVQDecoder {
 public:
  CudaVQDecoder(std::vector<CudaVQLevelWeights> levels, std::string name, int device = 0);
  ~CudaVQDecoder();
  // z: n x t codes of `level` -> n x out_channels x (t * hop) samples.
  Buffer<float> decode(const int32_t* z, int n, int t, int level, Progress& progress);
  std::string describe() const { return "CUDA on " + ctx_.device_name(); }

 private:
  std::vector<CudaVQLevelWeights> levels_;
  std::string name_;
  CudaContext ctx_;
  std::mutex mu_;
  std::vector<jb_cuda_vqvae*> models_;
};

}  // namespace jb
