// AVX2/FMA/F16C few-row kernels (see gemv.h). Compiled for those extensions in this file
// only and called only when cpu_features reports them; no standard-library templates here
// (see gemm_ukernel_avx2.cc).
#include "gemv.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace jb {

namespace {

template <bool F16>
__attribute__((target("avx2,fma,f16c"))) inline __m256 load8(const void* w, size_t i) {
  if (F16) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + i)));
  return _mm256_loadu_ps(static_cast<const float*>(w) + i);
}

template <bool F16>
__attribute__((target("avx2,fma,f16c"))) inline float load1(const void* w, size_t i) {
  if (F16) return _cvtsh_ss(static_cast<const uint16_t*>(w)[i]);
  return static_cast<const float*>(w)[i];
}

// R rows x C vectors of 8 columns, the accumulators in registers, W read down the
// columns of one tile (C * 16 or 32 contiguous bytes per row of W).
template <int R, int C, bool F16>
__attribute__((target("avx2,fma,f16c"))) void gemv_tile(const float* x, int ldx, const void* w, int K, int N, int col,
                                                         float* acc, int ldacc) {
  __m256 a[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) a[r][c] = _mm256_setzero_ps();
  for (int k = 0; k < K; ++k) {
    const size_t base = size_t(k) * N + col;
    __m256 wv[C];
    for (int c = 0; c < C; ++c) wv[c] = load8<F16>(w, base + 8 * c);
    for (int r = 0; r < R; ++r) {
      const __m256 xv = _mm256_broadcast_ss(x + size_t(r) * ldx + k);
      for (int c = 0; c < C; ++c) a[r][c] = _mm256_fmadd_ps(xv, wv[c], a[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) _mm256_storeu_ps(acc + size_t(r) * ldacc + 8 * c, a[r][c]);
}

// Columns in tiles of C vectors; the < 8 leftover columns scalar.
template <int R, int C, bool F16>
__attribute__((target("avx2,fma,f16c"))) void gemv_rows(const float* x, int ldx, const void* w, int K, int N, int j0,
                                                         int nc, float* acc, int ldacc) {
  int j = 0;
  for (; j + 8 * C <= nc; j += 8 * C) gemv_tile<R, C, F16>(x, ldx, w, K, N, j0 + j, acc + j, ldacc);
  for (; j + 8 <= nc; j += 8) gemv_tile<R, 1, F16>(x, ldx, w, K, N, j0 + j, acc + j, ldacc);
  for (; j < nc; ++j)
    for (int r = 0; r < R; ++r) {
      float s = 0.0f;
      for (int k = 0; k < K; ++k) s += x[size_t(r) * ldx + k] * load1<F16>(w, size_t(k) * N + j0 + j);
      acc[size_t(r) * ldacc + j] = s;
    }
}

template <bool F16>
__attribute__((target("avx2,fma,f16c"))) void gemv_impl(const float* x, int M, int ldx, const void* w, int K, int N,
                                                         int j0, int nc, float* acc, int ldacc) {
  for (int m0 = 0; m0 < M; m0 += 4) {
    const float* xm = x + size_t(m0) * ldx;
    float* am = acc + size_t(m0) * ldacc;
    // register budget: R x C accumulators + C weight vectors <= 16
    switch (M - m0 < 4 ? M - m0 : 4) {
      case 1: gemv_rows<1, 8, F16>(xm, ldx, w, K, N, j0, nc, am, ldacc); break;
      case 2: gemv_rows<2, 4, F16>(xm, ldx, w, K, N, j0, nc, am, ldacc); break;
      case 3: gemv_rows<3, 3, F16>(xm, ldx, w, K, N, j0, nc, am, ldacc); break;
      default: gemv_rows<4, 2, F16>(xm, ldx, w, K, N, j0, nc, am, ldacc); break;
    }
  }
}

template <bool F16>
__attribute__((target("avx2,fma,f16c"))) void dots_impl(const float* x, int M, int ldx, const void* w, int K, int j0,
                                                         int nc, float* acc, int ldacc) {
  for (int j = 0; j < nc; ++j) {
    const size_t row = size_t(j0 + j) * K;
    for (int m = 0; m < M; ++m) {
      const float* xm = x + size_t(m) * ldx;
      __m256 s = _mm256_setzero_ps();
      int k = 0;
      for (; k + 8 <= K; k += 8) s = _mm256_fmadd_ps(_mm256_loadu_ps(xm + k), load8<F16>(w, row + k), s);
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, s);
      float total = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
      for (; k < K; ++k) total += xm[k] * load1<F16>(w, row + k);
      acc[size_t(m) * ldacc + j] = total;
    }
  }
}

template <int R, bool F16>
__attribute__((target("avx2,fma,f16c"))) void krange_impl(const float* x, int ldx, const void* w, int N, int k0, int k1,
                                                           float* acc, int ldacc) {
  const int nv = N & ~15;
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < N; ++j) acc[size_t(r) * ldacc + j] = 0.0f;
  for (int k = k0; k < k1; ++k) {
    const size_t base = size_t(k) * N;
    __m256 xv[R];
    for (int r = 0; r < R; ++r) xv[r] = _mm256_broadcast_ss(x + size_t(r) * ldx + k);
    for (int j = 0; j < nv; j += 16) {
      const __m256 w0 = load8<F16>(w, base + j), w1 = load8<F16>(w, base + j + 8);
      for (int r = 0; r < R; ++r) {
        float* a = acc + size_t(r) * ldacc + j;
        _mm256_storeu_ps(a, _mm256_fmadd_ps(xv[r], w0, _mm256_loadu_ps(a)));
        _mm256_storeu_ps(a + 8, _mm256_fmadd_ps(xv[r], w1, _mm256_loadu_ps(a + 8)));
      }
    }
    for (int j = nv; j < N; ++j) {
      const float wv = load1<F16>(w, base + j);
      for (int r = 0; r < R; ++r) acc[size_t(r) * ldacc + j] += x[size_t(r) * ldx + k] * wv;
    }
  }
}

}  // namespace

void gemv_krange_avx2(const float* x, int M, int ldx, const void* w, bool f16, int N, int k0, int k1, float* acc,
                      int ldacc) {
  // Up to 4 rows per pass over W, so a batch of 4 still reads every weight once.
  for (int m0 = 0; m0 < M; m0 += 4) {
    const float* xm = x + size_t(m0) * ldx;
    float* am = acc + size_t(m0) * ldacc;
    switch (M - m0 < 4 ? M - m0 : 4) {
      case 1: f16 ? krange_impl<1, true>(xm, ldx, w, N, k0, k1, am, ldacc) : krange_impl<1, false>(xm, ldx, w, N, k0, k1, am, ldacc); break;
      case 2: f16 ? krange_impl<2, true>(xm, ldx, w, N, k0, k1, am, ldacc) : krange_impl<2, false>(xm, ldx, w, N, k0, k1, am, ldacc); break;
      case 3: f16 ? krange_impl<3, true>(xm, ldx, w, N, k0, k1, am, ldacc) : krange_impl<3, false>(xm, ldx, w, N, k0, k1, am, ldacc); break;
      default: f16 ? krange_impl<4, true>(xm, ldx, w, N, k0, k1, am, ldacc) : krange_impl<4, false>(xm, ldx, w, N, k0, k1, am, ldacc); break;
    }
  }
}

void gemv_avx2(const float* x, int M, int ldx, const void* w, bool f16, int K, int N, int j0, int nc,
               float* acc, int ldacc) {
  if (f16) {
    gemv_impl<true>(x, M, ldx, w, K, N, j0, nc, acc, ldacc);
  } else {
    gemv_impl<false>(x, M, ldx, w, K, N, j0, nc, acc, ldacc);
  }
}

void dots_avx2(const float* x, int M, int ldx, const void* w, bool f16, int K, int j0, int nc, float* acc,
               int ldacc) {
  if (f16) {
    dots_impl<true>(x, M, ldx, w, K, j0, nc, acc, ldacc);
  } else {
    dots_impl<false>(x, M, ldx, w, K, j0, nc, acc, ldacc);
  }
}

}  // namespace jb

#else

namespace jb {
// Non-x86 builds never call these (cpu_features reports Generic there).
void gemv_avx2(const float*, int, int, const void*, bool, int, int, int, int, float*, int) {}
void gemv_krange_avx2(const float*, int, int, const void*, bool, int, int, int, float*, int) {}
void dots_avx2(const float*, int, int, const void*, bool, int, int, int, float*, int) {}
}  // namespace jb

#endif
