// AVX2/FMA micro-kernel, compiled for AVX2 in this file only and called only when
// cpu_features says the CPU has it. Keep this file free of standard-library templates:
// an inline function instantiated here with AVX2 code could be picked by the linker for
// callers on CPUs without AVX2.
#include "gemm_ukernel.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace jb {

__attribute__((target("avx2,fma"))) void ukernel_avx2(int K, const float* a, const float* b,
                                                       float* c, int ldc, bool accumulate) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
    __m256 av = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(av, b0, c40);
    c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(av, b0, c50);
    c51 = _mm256_fmadd_ps(av, b1, c51);
    a += kMR;
    b += kNR;
  }
  const __m256 rows[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                               {c30, c31}, {c40, c41}, {c50, c51}};
  for (int r = 0; r < kMR; ++r) {
    float* cr = c + r * ldc;
    if (accumulate) {
      _mm256_storeu_ps(cr, _mm256_add_ps(_mm256_loadu_ps(cr), rows[r][0]));
      _mm256_storeu_ps(cr + 8, _mm256_add_ps(_mm256_loadu_ps(cr + 8), rows[r][1]));
    } else {
      _mm256_storeu_ps(cr, rows[r][0]);
      _mm256_storeu_ps(cr + 8, rows[r][1]);
    }
  }
}

__attribute__((target("avx2,fma"))) void pack_row_avx2(const float* src, float* dst, bool relu) {
  __m256 a = _mm256_loadu_ps(src), b = _mm256_loadu_ps(src + 8);
  if (relu) {
    const __m256 zero = _mm256_setzero_ps();
    a = _mm256_max_ps(a, zero);
    b = _mm256_max_ps(b, zero);
  }
  _mm256_store_ps(dst, a);
  _mm256_store_ps(dst + 8, b);
}

}  // namespace jb

#else

namespace jb {
// Non-x86 builds never select this kernel (cpu_features reports Generic).
void ukernel_avx2(int K, const float* a, const float* b, float* c, int ldc, bool accumulate) {
  ukernel_generic(K, a, b, c, ldc, accumulate);
}
void pack_row_avx2(const float* src, float* dst, bool relu) { pack_row_generic(src, dst, relu); }
}  // namespace jb

#endif
