// KV-cache addressing of the decode step: which row position pos is stored in and which
// contiguous run of rows a query at pos reads, per attention type. Row indices are exactly
// csrc/model/kv_cache.cc's (LayerKVCache::put / keys_for; checked against it by
// cuda/test/helpers_test.cc), so CPU and GPU caches hold the same rows in the same order:
//   dense (0)      every position so far                     row pos
//   row (1)        the current block                          row pos % bc
//   column (2)     one entry per earlier block, per column    row (pos % bc) * blocks + pos / bc
//   previous (3)   the last full block and the current one    row (block % 2) * bc + pos % bc
//   enc-dec (6)    the lyric encoder's keys, written once     row j
//   prime (7)      the first prime_len positions              row pos (pos < prime_len)
// Column keys of one residue are contiguous, so every query reads one run of rows.
// len must be a multiple of block_ctx (n_ctx always is); blocks = len / block_ctx.
//
// Element addressing on the GPU is head-major, [sample][head][row][head_dim] in fp16: one
// head's keys for a query are then count * head_dim contiguous halves (kv_index). The CPU
// cache is [sample][row][state] in fp32 (kv_index_row_major); the rows are the same.
#pragma once
#include <stddef.h>

#include "attn_index.h"

namespace jb {
namespace gpu {

// Rows per sample of a layer's cache.
JB_HD int kv_rows(const AttnGeom& g) {
  const int bc = g.block_ctx;
  switch (g.func) {
    case kAttnDense: return g.len;
    case kAttnRow: return bc;
    case kAttnColumn: return bc * (g.len / bc);
    case kAttnPrevRow: return 2 * bc;
    case kAttnEncDec: return g.enc_len;
    case kAttnPrime: return min_i(g.prime_len, g.len);
    default: return 0;
  }
}

// Row the key/value of position pos goes to, or -1 when the type never reads it (enc-dec
// keys are written once from the encoder; prime keys stop at prime_len).
JB_HD int kv_put_row(const AttnGeom& g, int pos) {
  const int bc = g.block_ctx;
  switch (g.func) {
    case kAttnDense: return pos;
    case kAttnRow: return pos % bc;
    case kAttnColumn: return (pos % bc) * (g.len / bc) + pos / bc;
    case kAttnPrevRow: return ((pos / bc) % 2) * bc + pos % bc;
    case kAttnPrime: return pos < g.prime_len ? pos : -1;
    default: return -1;
  }
}

// The rows a query at pos reads (after its own key/value was put): rows
// [first_row, first_row + count). zero_output: previous-row attention in block 0.
struct KVRun {
  int first_row = 0;
  int count = 0;
  bool zero_output = false;
};

JB_HD KVRun kv_run(const AttnGeom& g, int pos) {
  const int bc = g.block_ctx;
  KVRun r;
  switch (g.func) {
    case kAttnDense: r.count = pos + 1; break;
    case kAttnRow: r.count = pos % bc + 1; break;
    case kAttnColumn: r.first_row = (pos % bc) * (g.len / bc); r.count = pos / bc + 1; break;
    case kAttnPrevRow:
      if (pos / bc == 0) {
        r.zero_output = true;
      } else {
        r.first_row = ((pos / bc - 1) % 2) * bc;
        r.count = bc;
      }
      break;
    case kAttnEncDec: r.count = g.enc_len; break;
    case kAttnPrime: r.count = min_i(pos, g.prime_len - 1) + 1; break;
    default: break;
  }
  return r;
}

// Position (encoder index for enc-dec) whose key sits t rows into pos's run: equals
// visible_keys(g, pos).at(t), which the tests check for every type.
JB_HD int kv_run_position(const AttnGeom& g, int pos, int t) {
  const int bc = g.block_ctx;
  switch (g.func) {
    case kAttnRow: return (pos / bc) * bc + t;
    case kAttnColumn: return t * bc + pos % bc;
    case kAttnPrevRow: return (pos / bc - 1) * bc + t;
    default: return t;  // dense, enc-dec, prime
  }
}

// GPU layout: [sample][head][row][head_dim].
JB_HD size_t kv_index(int rows, int heads, int head_dim, int b, int h, int row, int d) {
  return ((size_t(b) * heads + h) * rows + row) * head_dim + d;
}
// CPU layout (csrc/model/kv_cache.cc): [sample][row][heads * head_dim].
JB_HD size_t kv_index_row_major(int rows, int heads, int head_dim, int b, int h, int row, int d) {
  return (size_t(b) * rows + row) * (size_t(heads) * head_dim) + size_t(h) * head_dim + d;
}
// Elements of one layer's K (or V) cache for n samples.
JB_HD size_t kv_elements(const AttnGeom& g, int n, int heads, int head_dim) {
  return size_t(n) * kv_rows(g) * heads * head_dim;
}

}  // namespace gpu
}  // namespace jb
