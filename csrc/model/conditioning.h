// What a prior is conditioned on (jukebox/prior/conditioners.py; reference §c.5):
// - LabelConditioner: y_cond = artist embedding + sum of genre embeddings (the start
//   token), and for the top level the timing signal (total length, absolute and relative
//   position, binned in float32 exactly as the original);
// - the upsamplers' Conditioner: embed the upper level's codes, a DecoderConvBock
//   upsampling them to this level's rate, then LayerNorm.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "../cpu/matmul.h"
#include "transformer.h"
#include "vqvae.h"

namespace jb {

struct RangeEmbedding {
  WeightView emb;  // (bins, w)
  int bins = 0;
  double pos_min = 0, pos_max = 1;
  bool clamp = false;
  // Bins of n_time positions interpolated over [start, end) (n_time 1: start only).
  void bins_for(float start, float end, int n_time, int* out) const;
};

struct LabelConditioner {
  WeightView artist_emb, genre_emb;  // (A, w), (G, w)
  int max_bow_genre_size = 1;
  bool timing = false;
  RangeEmbedding total_length, absolute_pos, relative_pos;
  int n_time = 0;  // music tokens per window
  int width = 0;

  int label_len() const { return 4 + max_bow_genre_size; }
  // y: n rows of [total_length, offset, length, artist, genre x max_bow_genre_size] (lyric
  // tokens removed). y_cond: n x w. x_cond: n x n_time x w when timing, else untouched.
  void forward(const int32_t* y, int n, float* y_cond, float* x_cond) const;
};

struct UpsamplerConditioner {
  WeightView x_emb;  // (l_bins, w)
  VQStack stack;     // DecoderConvBock, NCT
  LayerNormW ln;
  int width = 0;
  int bins = 0;
  // z: n x t codes of the level above -> x_cond: n x (t * upsampling) x w.
  std::vector<float> forward(const int32_t* z, int n, int t, ThreadPool& pool, Progress& progress,
                             int& out_len) const;
  // The last step alone: the stack's output (n x w x len, NCT) -> NTC, then the LayerNorm.
  // (The CUDA backend runs the embedding and the stack on the device and finishes here.)
  std::vector<float> normalise(const float* nct, int n, int len) const;
};

}  // namespace jb
