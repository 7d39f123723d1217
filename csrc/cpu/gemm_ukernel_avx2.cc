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
  static_assert(kMR == 4 && kNR == 24, "this kernel is written for a 4 x 24 tile");
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c02 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps(), c12 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c22 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c32 = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
    const __m256 b2 = _mm256_load_ps(b + 16);
    __m256 av = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    c02 = _mm256_fmadd_ps(av, b2, c02);
    av = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    c12 = _mm256_fmadd_ps(av, b2, c12);
    av = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    c22 = _mm256_fmadd_ps(av, b2, c22);
    av = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    c32 = _mm256_fmadd_ps(av, b2, c32);
    a += kMR;
    b += kNR;
  }
  const __m256 rows[kMR][3] = {{c00, c01, c02}, {c10, c11, c12}, {c20, c21, c22}, {c30, c31, c32}};
  for (int r = 0; r < kMR; ++r) {
    float* cr = c + r * ldc;
    for (int v = 0; v < 3; ++v) {
      const __m256 prev = accumulate ? _mm256_loadu_ps(cr + 8 * v) : _mm256_setzero_ps();
      _mm256_storeu_ps(cr + 8 * v, _mm256_add_ps(prev, rows[r][v]));
    }
  }
}

__attribute__((target("avx2,fma"))) void pack_row_avx2(const float* src, float* dst, long dst_stride, int n, bool relu) {
  static_assert(kNR % 8 == 0, "rows are whole vectors");
  const __m256 zero = _mm256_setzero_ps();
  for (int i = 0; i < n; ++i, src += kNR, dst += dst_stride) {
    for (int v = 0; v < kNR; v += 8) {
      __m256 x = _mm256_loadu_ps(src + v);
      if (relu) x = _mm256_max_ps(x, zero);
      _mm256_storeu_ps(dst + v, x);
    }
  }
}

}  // namespace jb

#else

namespace jb {
// Non-x86 builds never select this kernel (cpu_features reports Generic).
void ukernel_avx2(int K, const float* a, const float* b, float* c, int ldc, bool accumulate) {
  ukernel_generic(K, a, b, c, ldc, accumulate);
}
void pack_row_avx2(const float* src, float* dst, long dst_stride, int n, bool relu) {
  pack_row_generic(src, dst, dst_stride, n, relu);
}
}  // namespace jb

#endif
