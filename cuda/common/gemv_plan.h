// How a batch-1..16 GEMV over fp16 weights is cut across the GPU (cuda/kernels/gemv.cu):
// column tiles of 2 * kGemvThreads outputs, and the K axis split so that there are enough
// blocks to keep every SM streaming weights (decode is bound by weight bandwidth). The split
// is deterministic (partials summed in a fixed order), so the same inputs give the same
// logits, run after run, as sampling with a seed needs. Pure: tested on the CPU.
#pragma once
#include "../../common/jb_hd.h"

namespace jb {
namespace gpu {

constexpr int kGemvThreads = 128;     // threads per block of the (K, N) kernel
constexpr int kGemvColsPerThread = 2;  // one half2 of weights per k
constexpr int kGemvMaxRows = 16;       // batch rows held in registers
constexpr int kGemvMinKPerSplit = 64;  // below this a split costs more than it gives

struct GemvPlan {
  int col_blocks;  // blocks along N
  int split_k;     // blocks along K (1: no partial sums)
  int k_per_split;
};

/** blocks_wanted: about 2 x the number of SMs. */
JB_HD GemvPlan gemv_plan(int K, int N, int blocks_wanted) {
  GemvPlan p;
  p.col_blocks = ceil_div(N, kGemvThreads * kGemvColsPerThread);
  int split = blocks_wanted > p.col_blocks ? ceil_div(blocks_wanted, p.col_blocks) : 1;
  split = min_i(split, max_i(1, K / kGemvMinKPerSplit));
  p.k_per_split = ceil_div(K, split);
  p.split_k = ceil_div(K, p.k_per_split);  // no empty split
  return p;
}

}  // namespace gpu
}  // namespace jb
