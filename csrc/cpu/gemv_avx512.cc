// AVX-512 few-row kernels (gemv.h's contracts): 16 columns per vector, fp16 widened with
// vcvtph2ps on 16 halves at a time. Compiled with AVX-512 flags and reached only through
// kAvx512Kernels; no standard-library templates here (see gemm_ukernel_avx512.cc).
//
// Decoding is bound by reading the weights once per token, so the gain over AVX2 is the
// instruction count per byte (half as many loads, widenings and FMAs), which leaves the
// load ports and the front end more room to keep the memory stream saturated.
//
// gemv_krange: every output is acc = 0, then acc = fma(x[k], W[k][j], acc) for k in order
// (the matrix's last N % 16 columns: acc += x[k] * W[k][j], unfused), as in the AVX2
// kernel: the same bits. dots: 16 partial sums per output instead of 8 (a different, still
// fixed, summation order).
#include "gemv.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace jb {

namespace {

template <bool F16>
inline __m512 load16(const void* w, size_t i) {
  if (F16) return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(w) + i)));
  return _mm512_loadu_ps(static_cast<const float*>(w) + i);
}

template <bool F16>
inline __m512 load16_masked(const void* w, size_t i, __mmask16 m) {
  if (F16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(w) + i));
  return _mm512_maskz_loadu_ps(m, static_cast<const float*>(w) + i);
}

template <bool F16>
inline float load1(const void* w, size_t i) {
  if (F16) return _cvtsh_ss(static_cast<const uint16_t*>(w)[i]);
  return static_cast<const float*>(w)[i];
}

// R rows x C vectors of 16 columns over W rows [kb, ke), accumulators in registers, loaded
// from acc unless this is the band's first group of rows.
template <int R, int C, bool F16>
inline void krange_block(const float* x, int ldx, const void* w, int N, int kb, int ke, bool first, int j, float* a,
                         int ldacc) {
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      acc[r][c] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(a + size_t(r) * ldacc + 16 * c);
  for (int k = kb; k < ke; ++k) {
    const size_t base = size_t(k) * N + j;
    __m512 xv[R];
    for (int r = 0; r < R; ++r) xv[r] = _mm512_set1_ps(x[size_t(r) * ldx + k]);
    for (int c = 0; c < C; ++c) {
      const __m512 wv = load16<F16>(w, base + 16 * c);
      for (int r = 0; r < R; ++r) acc[r][c] = _mm512_fmadd_ps(xv[r], wv, acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(a + size_t(r) * ldacc + 16 * c, acc[r][c]);
}

template <int R, bool F16>
void krange_impl(const float* x, int ldx, const void* w, int N, int k0, int k1, int j0, int jv, int j1, float* acc,
                 int ldacc) {
  constexpr int U = 8;  // W rows per accumulator load/store
  // 8-16 accumulators per block: R=1 256 columns, R=2 128, R=3 64 (12), R=4 64.
  constexpr int C = R == 1 ? 16 : R == 2 ? 8 : 4;
  if (k0 >= k1) {
    for (int r = 0; r < R; ++r)
      for (int j = j0; j < j1; ++j) acc[size_t(r) * ldacc + (j - j0)] = 0.0f;
    return;
  }
  for (int kb = k0; kb < k1; kb += U) {
    const int ke = kb + U < k1 ? kb + U : k1;
    const bool first = kb == k0;
    int j = j0;
    for (; j + 16 * C <= jv; j += 16 * C) krange_block<R, C, F16>(x, ldx, w, N, kb, ke, first, j, acc + (j - j0), ldacc);
    for (; j + 64 <= jv; j += 64) krange_block<R, 4, F16>(x, ldx, w, N, kb, ke, first, j, acc + (j - j0), ldacc);
    for (; j < jv; j += 16) krange_block<R, 1, F16>(x, ldx, w, N, kb, ke, first, j, acc + (j - j0), ldacc);
  }
  if (jv >= j1) return;
  for (int r = 0; r < R; ++r)
    for (int j = jv; j < j1; ++j) acc[size_t(r) * ldacc + (j - j0)] = 0.0f;
  for (int k = k0; k < k1; ++k) {
    const size_t base = size_t(k) * N;
    for (int j = jv; j < j1; ++j) {
      const float wv = load1<F16>(w, base + j);
      for (int r = 0; r < R; ++r) acc[size_t(r) * ldacc + (j - j0)] += x[size_t(r) * ldx + k] * wv;
    }
  }
}

// 16 lanes -> 8 (lane l + lane l+8), then the AVX2 kernel's pairwise 8-lane reduction
// of 8 outputs at once.
inline __m256 fold(__m512 s) {
  return _mm256_add_ps(_mm512_extractf32x8_ps(s, 0), _mm512_extractf32x8_ps(s, 1));
}

inline __m256 reduce8(__m256 s0, __m256 s1, __m256 s2, __m256 s3, __m256 s4, __m256 s5, __m256 s6, __m256 s7) {
  const __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
  const __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(s4, s5), _mm256_hadd_ps(s6, s7));
  return _mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t0, t1, 0x31));
}

inline float hsum16(__m512 s) {
  const __m256 f = fold(s);
  const __m128 h = _mm_add_ps(_mm256_castps256_ps128(f), _mm256_extractf128_ps(f, 1));
  const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}

// Output j = dot(x[m], W row j): 8 rows of W at a time, 16 lanes each, the last K % 16
// elements through a masked load (zeros add nothing).
template <bool F16>
void dots_impl(const float* x, int M, int ldx, const void* w, int K, int j0, int nc, float* acc, int ldacc) {
  const int kv = K & ~15;
  const __mmask16 tail = __mmask16((1u << (K - kv)) - 1u);
  int j = 0;
  for (; j + 8 <= nc; j += 8) {
    const size_t row = size_t(j0 + j) * K;
    for (int m = 0; m < M; ++m) {
      const float* xm = x + size_t(m) * ldx;
      __m512 s[8];
      for (int i = 0; i < 8; ++i) s[i] = _mm512_setzero_ps();
      for (int k = 0; k < kv; k += 16) {
        const __m512 xv = _mm512_loadu_ps(xm + k);
        for (int i = 0; i < 8; ++i) s[i] = _mm512_fmadd_ps(xv, load16<F16>(w, row + size_t(i) * K + k), s[i]);
      }
      if (kv < K) {
        const __m512 xv = _mm512_maskz_loadu_ps(tail, xm + kv);
        for (int i = 0; i < 8; ++i) s[i] = _mm512_fmadd_ps(xv, load16_masked<F16>(w, row + size_t(i) * K + kv, tail), s[i]);
      }
      _mm256_storeu_ps(acc + size_t(m) * ldacc + j,
                       reduce8(fold(s[0]), fold(s[1]), fold(s[2]), fold(s[3]), fold(s[4]), fold(s[5]), fold(s[6]), fold(s[7])));
    }
  }
  for (; j < nc; ++j) {
    const size_t row = size_t(j0 + j) * K;
    for (int m = 0; m < M; ++m) {
      const float* xm = x + size_t(m) * ldx;
      __m512 s = _mm512_setzero_ps();
      for (int k = 0; k < kv; k += 16) s = _mm512_fmadd_ps(_mm512_loadu_ps(xm + k), load16<F16>(w, row + k), s);
      if (kv < K) s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, xm + kv), load16_masked<F16>(w, row + kv, tail), s);
      acc[size_t(m) * ldacc + j] = hsum16(s);
    }
  }
}

}  // namespace

void gemv_krange_avx512(const float* x, int M, int ldx, const void* w, bool f16, int N, int k0, int k1, int j0, int nc,
                        float* acc, int ldacc) {
  const int j1 = j0 + nc;
  const int nv = N & ~15;  // the matrix's vector columns: the same split as the AVX2 kernel
  const int jv = j1 < nv ? j1 : (j0 > nv ? j0 : nv);
  for (int m0 = 0; m0 < M; m0 += 4) {
    const float* xm = x + size_t(m0) * ldx;
    float* am = acc + size_t(m0) * ldacc;
    switch (M - m0 < 4 ? M - m0 : 4) {
      case 1: f16 ? krange_impl<1, true>(xm, ldx, w, N, k0, k1, j0, jv, j1, am, ldacc) : krange_impl<1, false>(xm, ldx, w, N, k0, k1, j0, jv, j1, am, ldacc); break;
      case 2: f16 ? krange_impl<2, true>(xm, ldx, w, N, k0, k1, j0, jv, j1, am, ldacc) : krange_impl<2, false>(xm, ldx, w, N, k0, k1, j0, jv, j1, am, ldacc); break;
      case 3: f16 ? krange_impl<3, true>(xm, ldx, w, N, k0, k1, j0, jv, j1, am, ldacc) : krange_impl<3, false>(xm, ldx, w, N, k0, k1, j0, jv, j1, am, ldacc); break;
      default: f16 ? krange_impl<4, true>(xm, ldx, w, N, k0, k1, j0, jv, j1, am, ldacc) : krange_impl<4, false>(xm, ldx, w, N, k0, k1, j0, jv, j1, am, ldacc); break;
    }
  }
}

void dots_avx512(const float* x, int M, int ldx, const void* w, bool f16, int K, int j0, int nc, float* acc, int ldacc) {
  if (f16) {
    dots_impl<true>(x, M, ldx, w, K, j0, nc, acc, ldacc);
  } else {
    dots_impl<false>(x, M, ldx, w, K, j0, nc, acc, ldacc);
  }
}

void widen_f16_avx512(const uint16_t* src, float* dst, int n) {
  int i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
  if (i < n) {
    const __mmask16 m = __mmask16((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + i)));
  }
}

}  // namespace jb

#endif
