// AVX2/FMA versions of vec.h's primitives; see gemm_ukernel_avx2.cc for why this file
// stays free of standard-library templates.
#include "vec.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace jb {

__attribute__((target("avx2,fma"))) float dot_avx2(const float* a, const float* b, int n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(s0, s1));
  float s = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

__attribute__((target("avx2,fma"))) void axpy_avx2(float alpha, const float* x, float* y, int n) {
  const __m256 a = _mm256_set1_ps(alpha);
  int i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += alpha * x[i];
}

// Four rows' LayerNorm statistics at once, one row per double lane, each lane adding its
// row in index order: bit-identical to the scalar loop, four times the throughput (the
// scalar loop is one dependent chain of double adds).
__attribute__((target("avx2,fma"))) void layer_norm4_avx2(const float* x, int width, const float* g, const float* b,
                                                          float* y) {
  const float* r0 = x;
  const float* r1 = x + size_t(width);
  const float* r2 = x + 2 * size_t(width);
  const float* r3 = x + 3 * size_t(width);
#define JB_COLUMN(i) _mm256_set_pd(double(r3[i]), double(r2[i]), double(r1[i]), double(r0[i]))
  __m256d mean = _mm256_setzero_pd();
  int i = 0;
  for (; i + 4 <= width; i += 4) {
    __m128 a = _mm_loadu_ps(r0 + i), bb = _mm_loadu_ps(r1 + i), c = _mm_loadu_ps(r2 + i), d = _mm_loadu_ps(r3 + i);
    _MM_TRANSPOSE4_PS(a, bb, c, d);  // a = element i of rows 0..3, bb = element i+1, ...
    mean = _mm256_add_pd(mean, _mm256_cvtps_pd(a));
    mean = _mm256_add_pd(mean, _mm256_cvtps_pd(bb));
    mean = _mm256_add_pd(mean, _mm256_cvtps_pd(c));
    mean = _mm256_add_pd(mean, _mm256_cvtps_pd(d));
  }
  for (; i < width; ++i) mean = _mm256_add_pd(mean, JB_COLUMN(i));
  const __m256d wd = _mm256_set1_pd(double(width));
  mean = _mm256_div_pd(mean, wd);
  __m256d var = _mm256_setzero_pd();
  i = 0;
  for (; i + 4 <= width; i += 4) {
    __m128 a = _mm_loadu_ps(r0 + i), bb = _mm_loadu_ps(r1 + i), c = _mm_loadu_ps(r2 + i), d = _mm_loadu_ps(r3 + i);
    _MM_TRANSPOSE4_PS(a, bb, c, d);
    const __m256d da = _mm256_sub_pd(_mm256_cvtps_pd(a), mean), db = _mm256_sub_pd(_mm256_cvtps_pd(bb), mean);
    const __m256d dc = _mm256_sub_pd(_mm256_cvtps_pd(c), mean), dd = _mm256_sub_pd(_mm256_cvtps_pd(d), mean);
    var = _mm256_add_pd(var, _mm256_mul_pd(da, da));
    var = _mm256_add_pd(var, _mm256_mul_pd(db, db));
    var = _mm256_add_pd(var, _mm256_mul_pd(dc, dc));
    var = _mm256_add_pd(var, _mm256_mul_pd(dd, dd));
  }
  for (; i < width; ++i) {
    const __m256d dv = _mm256_sub_pd(JB_COLUMN(i), mean);
    var = _mm256_add_pd(var, _mm256_mul_pd(dv, dv));
  }
#undef JB_COLUMN
  var = _mm256_div_pd(var, wd);
  const __m256d inv = _mm256_div_pd(_mm256_set1_pd(1.0), _mm256_sqrt_pd(_mm256_add_pd(var, _mm256_set1_pd(1e-5))));
  alignas(32) double means[4], invs[4];
  _mm256_store_pd(means, mean);
  _mm256_store_pd(invs, inv);
  // y = float((x - mean) * inv) * g + b, as the scalar loop (no FMA contraction there).
  for (int r = 0; r < 4; ++r) {
    const float* xr = x + size_t(r) * width;
    float* yr = y + size_t(r) * width;
    const __m256d mr = _mm256_set1_pd(means[r]), ir = _mm256_set1_pd(invs[r]);
    int j = 0;
    for (; j + 4 <= width; j += 4) {
      const __m256d t = _mm256_mul_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(xr + j)), mr), ir);
      const __m128 f = _mm256_cvtpd_ps(t);
      _mm_storeu_ps(yr + j, _mm_add_ps(_mm_mul_ps(f, _mm_loadu_ps(g + j)), _mm_loadu_ps(b + j)));
    }
    for (; j < width; ++j) yr[j] = float((xr[j] - means[r]) * invs[r]) * g[j] + b[j];
  }
}

}  // namespace jb

#else

namespace jb {
float dot_avx2(const float* a, const float* b, int n) { return dot_generic(a, b, n); }
void axpy_avx2(float alpha, const float* x, float* y, int n) { axpy_generic(alpha, x, y, n); }
void layer_norm4_avx2(const float*, int, const float*, const float*, float*) {}
}  // namespace jb

#endif
