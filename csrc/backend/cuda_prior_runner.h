// The CUDA implementation of PriorRunner: the CUDA library's model ABI (prior_create /
// prior_window / prior_forward) over the same weights the CPU engine maps. The device model
// is created at load for opts.samples samples (a model that does not fit fails there, naming
// what) and made again only when a window needs more samples: KV caches are sized per sample
// count (~7.7 GB per sample for the 5b top prior with fp32 caches), so they are not reserved
// for batches that never come.
// Conditioning: the upsampler conditioner's embedding and conv stack run on the device (the
// VQ-VAE decoder path of the library: a codebook gather and a conv stack, with the prior's
// x_emb as the codebook) and the 5b lyric encoder's body too (prior_forward of an encode-only
// model); their last steps (LayerNorm, the projection) and the label/timing embeddings run
// on the CPU, and the result is uploaded once per window.
#pragma once
#include <memory>

#include "../model/prior_runner.h"
#include "cuda_vqvae_runner.h"

namespace jb {

struct CudaPriorOptions {
  int device = 0;
  bool kv_f16 = false;  // fp16 KV caches (faster, no longer token-equal to the CPU engine)
  std::string name;     // the model file, for messages
  int samples = 1;      // samples the device model is first made for (load fails early if they do not fit)
};

// model: the prior; conditioner: the upsampler conditioner's stack in the ABI's terms (x_emb
// rows as the codebook; moved from), or null for a top-level prior.
std::unique_ptr<PriorRunner> make_cuda_prior_runner(const PriorModel& model, const CudaPriorOptions& opts,
                                                    CudaVQLevelWeights* conditioner);
// A bare transformer (the lyric encoder's body): forward only.
std::unique_ptr<PriorRunner> make_cuda_prior_runner(const Autoregressive& model, const CudaPriorOptions& opts);

}  // namespace jb
