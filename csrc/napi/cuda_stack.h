// A conv stack of a plan (lib/native.ts NativeStack: a VQ-VAE decoder, or an upsampler
// conditioner's DecoderConvBock) in the CUDA ABI's terms, with its weights read as fp32 the
// way the CPU engine reads them (csrc/napi/weights.cc); the codebook is the table gathered
// before the stack (the VQ-VAE's codes, or the conditioner's x_emb rows).
#pragma once
#include <napi.h>

#include <vector>

#include "../backend/cuda_vqvae_runner.h"
#include "../core/mapped_file.h"

namespace jb {

CudaVQLevelWeights cuda_stack_weights(const Napi::Object& stack, const std::vector<float>& codebook, int bins, int width,
                                      int hop, const MappedFile* file);

// The upsampling factor of a stack: the product of its transposed convs' strides over its
// strided convs' (a decoder's hop length).
int stack_upsampling(const Napi::Object& stack);

}  // namespace jb
