// Block-sparse attention index maps of the factorized transformer, as pure functions for
// the prefill and decode kernels (and their CPU tests). They restate csrc/cpu/attention.cc
// (visible_keys, attention_ref's mask) exactly; cuda/test/helpers_test.cc checks that, key
// by key, against the CPU engine's own functions.
//
// Query i over a window of `len` positions laid out as rows of block_ctx (bc) sees:
//   0 dense     j <= i
//   1 row       j in i's block, j <= i
//   2 column    j == i (mod bc), j <= i
//   3 previous  all of block(i) - 1; in block 0 nothing (output 0, as the original's zero keys)
//   6 enc-dec   all enc_len encoder positions
//   7 prime     j < prime_len and j <= i
// Every key set is an arithmetic run first, first + step, ... (count keys), so a kernel
// never builds a mask: it walks the run, or tiles of it (classify_tile).
#pragma once
#include <math.h>

#include "jb_hd.h"

namespace jb {
namespace gpu {

enum AttnFunc : int {
  kAttnDense = 0,
  kAttnRow = 1,
  kAttnColumn = 2,
  kAttnPrevRow = 3,
  kAttnEncDec = 6,
  kAttnPrime = 7,
};

// The shape of one attention layer's window. len: query positions (and key positions,
// except enc-dec, whose keys are the enc_len encoder positions).
struct AttnGeom {
  int func = 0;
  int len = 0;
  int block_ctx = 1;
  int prime_len = 0;  // func 7
  int enc_len = 0;    // func 6
};

JB_HD bool attn_func_supported(int func) {
  return func == 0 || func == 1 || func == 2 || func == 3 || func == 6 || func == 7;
}

// The original multiplies q.k by scale*scale with scale = 1/sqrt(sqrt(head_dim)); the CPU
// engine rounds that product once to float, and so must every kernel.
JB_HD float attn_score_scale(int head_dim) {
  const double s = 1.0 / sqrt(sqrt(double(head_dim)));
  return float(s * s);
}

// Key positions a query sees: first + t * step for t in [0, count).
struct KeySpan {
  int first = 0;
  int step = 1;
  int count = 0;
  bool zero_output = false;  // previous-row attention in block 0: output exactly 0

  JB_HD int last() const { return first + (count - 1) * step; }
  JB_HD int at(int t) const { return first + t * step; }
};

// Number of key positions a query can see at most (the scratch a kernel needs per row).
JB_HD int attn_key_positions(const AttnGeom& g) { return g.func == kAttnEncDec ? g.enc_len : g.len; }

JB_HD KeySpan visible_keys(const AttnGeom& g, int i) {
  KeySpan r;
  const int bc = g.block_ctx;
  switch (g.func) {
    case kAttnDense: r.count = i + 1; break;
    case kAttnRow: r.first = (i / bc) * bc; r.count = i - r.first + 1; break;
    case kAttnColumn: r.first = i % bc; r.step = bc; r.count = i / bc + 1; break;
    case kAttnPrevRow:
      if (i / bc == 0) {
        r.zero_output = true;
      } else {
        r.first = (i / bc - 1) * bc;
        r.count = bc;
      }
      break;
    case kAttnEncDec: r.count = g.enc_len; break;
    case kAttnPrime: r.count = min_i(i, g.prime_len - 1) + 1; if (r.count < 0) r.count = 0; break;
    default: r.count = 0; break;
  }
  return r;
}

// The same key sets as a predicate (attention_ref's mask in the original's -1e9 form).
JB_HD bool key_visible(const AttnGeom& g, int i, int j) {
  const int bc = g.block_ctx;
  switch (g.func) {
    case kAttnDense: return j <= i;
    case kAttnRow: return j / bc == i / bc && j <= i;
    case kAttnColumn: return j % bc == i % bc && j <= i;
    case kAttnPrevRow: return j / bc == i / bc - 1;
    case kAttnEncDec: return j >= 0 && j < g.enc_len;
    case kAttnPrime: return j < g.prime_len && j <= i;
    default: return false;
  }
}

// How many keys of a span lie in [k0, k1).
JB_HD int span_count_in(const KeySpan& s, int k0, int k1) {
  if (s.count <= 0 || k1 <= k0) return 0;
  const int lo = max_i(s.first, k0), hi = min_i(s.last(), k1 - 1);
  if (hi < lo) return 0;
  const int t0 = (lo - s.first + s.step - 1) / s.step;  // first t with at(t) >= lo
  const int t1 = (hi - s.first) / s.step;               // last t with at(t) <= hi
  return t1 >= t0 ? t1 - t0 + 1 : 0;
}

// A tile of queries [q0, q1) x keys [k0, k1) of a tiled (flash-style) prefill kernel:
// skip it (empty), run it without masking (full), or with key_visible per element (partial).
enum TileKind : int { kTileEmpty = 0, kTileFull = 1, kTilePartial = 2 };

JB_HD TileKind classify_tile(const AttnGeom& g, int q0, int q1, int k0, int k1) {
  bool any = false, all = true;
  for (int i = q0; i < q1; ++i) {
    const int c = span_count_in(visible_keys(g, i), k0, k1);
    any = any || c > 0;
    all = all && c == k1 - k0;
  }
  if (!any) return kTileEmpty;
  return all ? kTileFull : kTilePartial;
}

// The key range [lo, hi) that the queries [q0, q1) read together (lo >= hi: none), so a
// kernel visits only key tiles lo / tk .. (hi - 1) / tk.
struct KeyBounds {
  int lo = 0, hi = 0;
};

JB_HD KeyBounds key_bounds(const AttnGeom& g, int q0, int q1) {
  KeyBounds b;
  bool found = false;
  for (int i = q0; i < q1; ++i) {
    const KeySpan s = visible_keys(g, i);
    if (s.count <= 0) continue;
    if (!found) {
      b.lo = s.first;
      b.hi = s.last() + 1;
      found = true;
    } else {
      b.lo = min_i(b.lo, s.first);
      b.hi = max_i(b.hi, s.last() + 1);
    }
  }
  return b;
}

// Column attention made contiguous: position p = block * bc + r goes to t = r * blocks +
// block (blocks = ceil(len / bc)), the KV cache's column layout. In that order column
// attention is row attention with block_ctx = blocks (each residue r is one causal run), so
// a prefill kernel gathers q/k/v into this order and runs its row-attention path.
// Positions t whose inverse is >= len (a partial last block) are holes: never queried and
// never visible to an existing query.
JB_HD int column_blocks(const AttnGeom& g) { return ceil_div(g.len, g.block_ctx); }
JB_HD int column_permute(int pos, int bc, int blocks) { return (pos % bc) * blocks + pos / bc; }
JB_HD int column_unpermute(int t, int bc, int blocks) { return (t % blocks) * bc + t / blocks; }
JB_HD AttnGeom column_as_row(const AttnGeom& g) {
  AttnGeom r = g;
  r.func = kAttnRow;
  r.block_ctx = column_blocks(g);
  r.len = g.block_ctx * r.block_ctx;
  return r;
}

}  // namespace gpu
}  // namespace jb
