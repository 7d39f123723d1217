// Full-sequence (teacher-forced / prefill) attention for the factorized "sparse"
// transformer (jukebox/transformer/factored_attention.py; reference §c.4). The sequence of
// L positions is laid out as rows of block_ctx; each type sees a different key set:
//   0 dense    j <= i
//   1 row      j in i's block, j <= i
//   2 column   j == i (mod block_ctx), j <= i
//   3 previous all of block(i) - 1; in block 0 the keys/values are zeros, so the output is 0
//   6 enc-dec  all enc_len encoder positions (no mask)
//   7 prime    j < prime_len and j <= i  (prime_len as the original's _prime_len)
// The fast path visits only visible keys (never a dense masked L x L matrix); the reference
// builds the original's full score matrix with -1e9 masking and softmaxes every row.
#pragma once
#include "../core/thread_pool.h"

namespace jb {

struct AttnShape {
  int func = 0;
  int len = 0;        // query positions (== key positions except for enc-dec)
  int block_ctx = 1;
  int heads = 1;
  int head_dim = 1;
  int prime_len = 0;  // func 7
  int enc_len = 0;    // func 6: key positions
};

bool attention_func_supported(int func);

// q (len, heads*head_dim), k and v (keys, heads*head_dim), row strides ldq/ldk/ldv;
// out (len, heads*head_dim) with stride ldo.
// record: optional (len x keys) attention probabilities of head `record_head` (lyrics
// alignment reads them from one layer).
void attention_forward(const AttnShape& s, const float* q, int ldq, const float* k, int ldk,
                       const float* v, int ldv, float* out, int ldo, ThreadPool& pool,
                       float* record = nullptr, int record_head = 0);
void attention_ref(const AttnShape& s, const float* q, int ldq, const float* k, int ldk,
                   const float* v, int ldv, float* out, int ldo);

}  // namespace jb
