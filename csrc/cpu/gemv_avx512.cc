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
// kernel: the same bits. The walk over the band, shared with the int8 kernel, and why it
// is laid out as it is: krange_walk.h. dots: 16 partial sums per output instead of 8 (a different, still
// fixed, summation order).
#include "gemv.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include "krange_walk.h"

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

// The fp32 and fp16 loaders of krange_walk.h.
struct LoadF32 {
  static constexpr int kBytes = 4;
  static __m512 load(const void* w, size_t i) { return jb::load16<false>(w, i); }
  static float load1(const void* w, size_t i) { return jb::load1<false>(w, i); }
};
struct LoadF16 {
  static constexpr int kBytes = 2;
  static __m512 load(const void* w, size_t i) { return jb::load16<true>(w, i); }
  static float load1(const void* w, size_t i) { return jb::load1<true>(w, i); }
};

struct LoadBF16 {  // bf16 -> fp32 is exact: the 16 bits are the float's top half
  static constexpr int kBytes = 2;
  static __m512 load(const void* w, size_t i) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(w) + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  // (core/half.h's bf16_to_float, written here: an inline function from a shared header,
  // emitted in this AVX-512 file, could be the copy the linker keeps for every caller)
  static float load1(const void* w, size_t i) {
    const uint32_t bits = uint32_t(static_cast<const uint16_t*>(w)[i]) << 16;
    float f;
    __builtin_memcpy(&f, &bits, 4);
    return f;
  }
};

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
  if (f16) {
    walk::krange<walk::Avx512Vec, LoadF16>(x, M, ldx, w, N, k0, k1, j0, nc, acc, ldacc);
  } else {
    walk::krange<walk::Avx512Vec, LoadF32>(x, M, ldx, w, N, k0, k1, j0, nc, acc, ldacc);
  }
}

void gemv_krange_bf16_avx512(const float* x, int M, int ldx, const uint16_t* w, int N, int k0, int k1, int j0,
                             int nc, float* acc, int ldacc) {
  walk::krange<walk::Avx512Vec, LoadBF16>(x, M, ldx, w, N, k0, k1, j0, nc, acc, ldacc);
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
