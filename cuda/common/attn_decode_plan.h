// How the decode step's attention is cut across blocks (cuda/kernels/attn_decode.cu): the
// keys of one (sample, head) are split into `splits` runs when there are few (sample, head)
// pairs and many keys (flash-decoding), each run's partial softmax merged in order. A pure
// function of the position, evaluated on the host (to size the grid and the workspace) and
// on the device (so a captured graph, whose grid is sized for the largest split count,
// reads the position from device memory and cuts exactly as a launch for that position
// would): the same inputs give the same bits either way. Tested on the CPU.
#pragma once
#include "../../common/kv_layout.h"

namespace jb {
namespace gpu {

constexpr int kAttnDecodeMinKeysPerSplit = 64;  // fewer keys per split cost more than they give

/** Key runs for the query at pos (n samples x heads pairs); blocks_wanted ~ 2 x the SMs. */
JB_HD int attn_decode_splits(const AttnGeom& g, int pos, int n, int heads, int blocks_wanted) {
  const KVRun run = kv_run(g, pos);
  const int count = run.zero_output ? 0 : run.count;
  const int pairs = max_i(1, n * heads);
  int splits = blocks_wanted > pairs ? ceil_div(blocks_wanted, pairs) : 1;
  splits = min_i(splits, max_i(1, count / kAttnDecodeMinKeysPerSplit));
  return splits;
}

/** Keys per split at pos (the last split may hold fewer; none is empty). */
JB_HD int attn_decode_keys_per_split(const AttnGeom& g, int pos, int splits) {
  const KVRun run = kv_run(g, pos);
  return max_i(1, ceil_div(run.count, splits));
}

/** The largest split count over every position of the window (the graph's grid depth). */
inline int attn_decode_max_splits(const AttnGeom& g, int n, int heads, int blocks_wanted) {
  int m = 1;
  for (int pos = 0; pos < g.len; ++pos) {
    const int s = attn_decode_splits(g, pos, n, heads, blocks_wanted);
    m = s > m ? s : m;
  }
  return m;
}

}  // namespace gpu
}  // namespace jb
