// The CUDA implementation of PriorRunner: the CUDA library's model ABI (prior_create /
// prior_window / prior_forward) over the same weights the CPU engine maps. The device model
// is created at load for opts.samples samples (a model that does not fit fails there, naming
// what) and made again only when a window needs more samples: KV caches are sized per sample
// count (~7.7 GB per sample for the 5b top prior with fp32 caches), so they are not reserved
// for batches that never come.
// Conditioning (labels, timing, the upsampler conditioner, the lyric encoder) is computed on
// the CPU by condition_window and uploaded once per window (a first step: cuda/README.md).
#pragma once
#include <memory>

#include "../model/prior_runner.h"

namespace jb {

struct CudaPriorOptions {
  int device = 0;
  bool kv_f16 = false;  // fp16 KV caches (faster, no longer token-equal to the CPU engine)
  std::string name;     // the model file, for messages
  int samples = 1;      // samples the device model is first made for (load fails early if they do not fit)
};

std::unique_ptr<PriorRunner> make_cuda_prior_runner(const Autoregressive& model, const CudaPriorOptions& opts);

}  // namespace jb
