// Few-row products for token-by-token decoding (M <= 8 rows of activations): every weight
// is read once from memory, so the speed is the memory bandwidth, and fp16 weights are
// read as fp16 (half the bytes) and widened in registers (F16C).
//   gemv: W stored (K, N); acc[m][j] = sum_k x[m][k] W[k][j0 + j]
//   dots: W stored (N, K) rows; acc[m][j] = dot(x[m], W[j0 + j])
#pragma once
#include <cstdint>

namespace jb {

void gemv_avx2(const float* x, int M, int ldx, const void* w, bool f16, int K, int N, int j0,
               int nc, float* acc, int ldacc);
// Rows [k0, k1) of W stored (K, N), all N columns: acc[m][j] = sum_{k0<=k<k1} x[m][k] W[k][j].
// W is read front to back as one sequential stream (splitting K across threads keeps every
// thread's stream sequential); acc (M x N, row stride ldacc) is overwritten.
void gemv_krange_avx2(const float* x, int M, int ldx, const void* w, bool f16, int N, int k0, int k1,
                      float* acc, int ldacc);
void dots_avx2(const float* x, int M, int ldx, const void* w, bool f16, int K, int j0, int nc,
               float* acc, int ldacc);

}  // namespace jb
