// Per-layer key/value caches for token-by-token decoding, each keeping only what its
// attention type reads, laid out so a step reads its keys as one contiguous run
// (reference §d.4; the original instead grows full caches with torch.cat and gathers
// strided columns every step):
//   dense (0)      every position so far                     [pos][s]
//   row (1)        the current block                          [pos % bc][s]
//   column (2)     one entry per earlier block, per column    [pos % bc][pos / bc][s]
//   previous (3)   the last full block and the current one    [block % 2][pos % bc][s]
//   enc-dec (6)    the lyric encoder's keys, computed once    [j][s]
//   prime (7)      the first prime_len positions              [pos][s]
#pragma once
#include <vector>

#include "../core/buffer.h"

namespace jb {

class LayerKVCache {
 public:
  LayerKVCache(int func, int n, int state, int len, int block_ctx, int prime_len, int enc_len);

  int func() const { return func_; }
  // Stores the key/value of position pos for sample b (ignored where the type never reads it).
  void put(int b, int pos, const float* k, const float* v);
  // Keys/values a query at position pos reads: `count` contiguous rows of `state` floats.
  // count 0 with zero_output: previous-block attention in block 0.
  struct Run {
    const float* k = nullptr;
    const float* v = nullptr;
    int count = 0;
    bool zero_output = false;
  };
  Run keys_for(int b, int pos) const;
  // Encoder-decoder layers: the fixed keys/values of sample b (enc_len x state each).
  float* enc_k(int b) { return k_.data() + size_t(b) * per_sample_; }
  float* enc_v(int b) { return v_.data() + size_t(b) * per_sample_; }
  size_t bytes() const { return 2 * k_.size() * sizeof(float); }

 private:
  int func_, n_, s_, len_, bc_, blocks_, prime_len_, enc_len_;
  size_t per_sample_ = 0;  // floats per sample per k or v
  Buffer<float> k_, v_;
};

}  // namespace jb
