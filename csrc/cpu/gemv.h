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
void dots_avx2(const float* x, int M, int ldx, const void* w, bool f16, int K, int j0, int nc,
               float* acc, int ldacc);

}  // namespace jb
