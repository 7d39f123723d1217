#include "kv_cache.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "../core/error.h"

namespace jb {

LayerKVCache::LayerKVCache(int func, int n, int state, int len, int block_ctx, int prime_len, int enc_len)
    : func_(func), n_(n), s_(state), len_(len), bc_(block_ctx), blocks_(len / block_ctx),
      prime_len_(prime_len), enc_len_(enc_len) {
  size_t rows = 0;
  switch (func) {
    case 0: rows = len; break;
    case 1: rows = bc_; break;
    case 2: rows = size_t(bc_) * blocks_; break;
    case 3: rows = 2 * size_t(bc_); break;
    case 6: rows = enc_len; break;
    case 7: rows = std::min(prime_len, len); break;
    default: fail("ERR_HPARAMS", "no KV cache for attention type " + std::to_string(func));
  }
  per_sample_ = rows * s_;
  // Not zeroed: every entry is written before a query reads it (previous-block attention
  // in block 0 reads nothing), and untouched pages of a large cache then cost nothing.
  k_.reset(per_sample_ * n, "KV cache");
  v_.reset(per_sample_ * n, "KV cache");
}

void LayerKVCache::put(int b, int pos, const float* k, const float* v) {
  size_t row;
  switch (func_) {
    case 0: row = pos; break;
    case 1: row = pos % bc_; break;
    case 2: row = size_t(pos % bc_) * blocks_ + pos / bc_; break;
    case 3: row = size_t((pos / bc_) % 2) * bc_ + pos % bc_; break;
    case 7:
      if (pos >= prime_len_) return;  // prime keys stop at prime_len
      row = pos;
      break;
    default: return;  // enc-dec keys are fixed
  }
  std::memcpy(k_.data() + size_t(b) * per_sample_ + row * s_, k, sizeof(float) * s_);
  std::memcpy(v_.data() + size_t(b) * per_sample_ + row * s_, v, sizeof(float) * s_);
}

LayerKVCache::Run LayerKVCache::keys_for(int b, int pos) const {
  const float* kb = k_.data() + size_t(b) * per_sample_;
  const float* vb = v_.data() + size_t(b) * per_sample_;
  Run r;
  size_t first = 0;
  switch (func_) {
    case 0: r.count = pos + 1; break;
    case 1: r.count = pos % bc_ + 1; break;
    case 2:
      first = size_t(pos % bc_) * blocks_;
      r.count = pos / bc_ + 1;
      break;
    case 3:
      if (pos / bc_ == 0) {
        r.zero_output = true;
        return r;
      }
      first = size_t((pos / bc_ - 1) % 2) * bc_;
      r.count = bc_;
      break;
    case 6: r.count = enc_len_; break;
    case 7: r.count = std::min(pos, prime_len_ - 1) + 1; break;
  }
  r.k = kb + first * s_;
  r.v = vb + first * s_;
  return r;
}

}  // namespace jb
