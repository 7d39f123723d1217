// Online softmax (m, l, acc) for attention computed in pieces: a running maximum m of the
// scores seen, the sum l of exp(score - m), and the value accumulator acc = sum of
// exp(score - m) * v. Pieces over disjoint key sets (key tiles of a prefill kernel, splits of
// a flash-decoding step, lanes of a warp) combine with softmax_combine, which is associative
// and commutative with softmax_empty() as identity; softmax_finish divides by l. An empty
// key set (previous-row attention in block 0) finishes to exactly 0, as on the CPU.
#pragma once
#include <math.h>

#include "../../common/jb_hd.h"

namespace jb {
namespace gpu {

struct SoftmaxPartial {
  float m;  // max score so far (-inf: no key yet)
  float l;  // sum of exp(score - m)
};

JB_HD SoftmaxPartial softmax_empty() { return SoftmaxPartial{-INFINITY, 0.0f}; }

// exp(m_old - m_new), 0 for an empty partial (avoids -inf - -inf = NaN).
JB_HD float softmax_rescale(float m_old, float m_new) { return m_old == -INFINITY ? 0.0f : expf(m_old - m_new); }

// The combine op: (x, y) -> merged, with the factors that rescale x's and y's accumulators
// (acc = acc_x * sx + acc_y * sy).
JB_HD SoftmaxPartial softmax_combine(SoftmaxPartial x, SoftmaxPartial y, float* sx, float* sy) {
  const float m = fmaxf(x.m, y.m);
  if (m == -INFINITY) {
    *sx = 0.0f;
    *sy = 0.0f;
    return softmax_empty();
  }
  *sx = softmax_rescale(x.m, m);
  *sy = softmax_rescale(y.m, m);
  return SoftmaxPartial{m, x.l * *sx + y.l * *sy};
}

// Adds one key: its (already scaled) score and its value row v[0..d).
JB_HD void softmax_push(SoftmaxPartial& st, float* acc, float score, const float* v, int d) {
  const float m = fmaxf(st.m, score);
  const float a = softmax_rescale(st.m, m);
  const float p = expf(score - m);
  st.m = m;
  st.l = st.l * a + p;
  for (int i = 0; i < d; ++i) acc[i] = acc[i] * a + p * v[i];
}

// Merges partial (y, acc_y) into (st, acc).
JB_HD void softmax_merge(SoftmaxPartial& st, float* acc, SoftmaxPartial y, const float* acc_y, int d) {
  float sx, sy;
  st = softmax_combine(st, y, &sx, &sy);
  for (int i = 0; i < d; ++i) acc[i] = acc[i] * sx + acc_y[i] * sy;
}

// out = acc / l (0 when no key was seen).
JB_HD void softmax_finish(SoftmaxPartial st, const float* acc, float* out, int d) {
  const float inv = st.l > 0.0f ? 1.0f / st.l : 0.0f;
  for (int i = 0; i < d; ++i) out[i] = acc[i] * inv;
}

}  // namespace gpu
}  // namespace jb
