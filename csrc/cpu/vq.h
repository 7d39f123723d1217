// Nearest-codebook search (the VQ-VAE bottleneck's encode): for each row x of an (n, width)
// matrix, the index j minimising ||x||^2 - 2 x.k_j + ||k_j||^2, first index on ties, as
// the original computes it (jukebox/vqvae/bottleneck.py quantise, torch.min semantics).
#pragma once
#include <cstdint>

#include "../core/buffer.h"
#include "../core/thread_pool.h"

namespace jb {

class Codebook {
 public:
  Codebook(const float* k, int bins, int width);  // k: (bins, width) row-major

  int bins() const { return bins_; }
  int width() const { return width_; }
  const float* row(int j) const { return k_.data() + size_t(j) * width_; }
  const float* norms() const { return norm_.data(); }
  // Codes in blocks of 8: packed_[(block * width + d) * 8 + lane] = k[block*8 + lane][d].
  const float* packed() const { return packed_.data(); }
  int blocks8() const { return (bins_ + 7) / 8; }

 private:
  int bins_, width_;
  Buffer<float> k_, norm_, packed_;
};

// x: (n, width) rows. out: n indices.
void vq_nearest_ref(const Codebook& cb, const float* x, int n, int32_t* out);
void vq_nearest(const Codebook& cb, const float* x, int n, int32_t* out, ThreadPool& pool);

// The ISA-specific row kernels vq_nearest dispatches to: rows [r0, r1).
void vq_rows_generic(const Codebook& cb, const float* x, int r0, int r1, int32_t* out);
void vq_rows_avx2(const Codebook& cb, const float* x, int r0, int r1, int32_t* out);
void vq_rows_avx512(const Codebook& cb, const float* x, int r0, int r1, int32_t* out);  // vq_avx512.cc

}  // namespace jb
