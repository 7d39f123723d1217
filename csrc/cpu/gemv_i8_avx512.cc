// AVX-512 int8 few-row kernels (gemv.h's int8 contracts): 16 int8 weights per load,
// sign-extended and converted to fp32 in registers (vpmovsxbd + vcvtdq2ps, exact), walked
// as the fp16 kernel walks its band (krange_walk.h). Compiled with AVX-512 flags and reached
// only through kAvx512Kernels; no standard-library templates here (gemm_ukernel_avx512.cc).
//
// Why fp32 arithmetic on dequantised weights and not VNNI (vpdpbusd, u8 x s8 -> s32 on 64
// products per instruction), which this CPU has: decoding reads every weight once per
// token, so the speed is the memory stream, and int8 halves it against fp16 either way.
// VNNI would also need (a) the activation row quantised to 8 bits per step, a second
// rounding error on top of the weights' that moves the logits (the accuracy target is
// < 0.02 bits/token), and (b) four consecutive k of one column side by side in a 32-bit
// lane, while the file stores W (K, N) row-major: four row loads and two byte/word
// interleaves per 64 weights, or a second, re-laid-out copy of every matrix. The widening
// path costs two extra instructions per 16 weights next to the FMAs and keeps up with the
// memory (BENCHMARKS.md: int8 streams as large a share of the copy bandwidth as fp16).
//
// gemv_krange_i8: each output is acc = 0, then acc = fma(x[k], q[k][j], acc) for k in
// order; the matrix's last N % 16 columns acc += x[k] * q[k][j] unfused, as in the AVX2
// kernel: the same bits.
#include "gemv.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include "krange_walk.h"

namespace jb {

namespace {

inline __m512 load16_i8(const int8_t* w) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w))));
}

inline __m512 load16_i8_masked(const int8_t* w, __mmask16 m) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, w)));
}

// The int8 loader of krange_walk.h (values unscaled: gemv.h).
struct LoadI8 {
  static constexpr int kBytes = 1;
  static __m512 load(const void* w, size_t i) { return load16_i8(static_cast<const int8_t*>(w) + i); }
  static float load1(const void* w, size_t i) { return float(static_cast<const int8_t*>(w)[i]); }
};

inline __m256 fold(__m512 s) { return _mm256_add_ps(_mm512_extractf32x8_ps(s, 0), _mm512_extractf32x8_ps(s, 1)); }

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

}  // namespace

void gemv_krange_i8_avx512(const float* x, int M, int ldx, const int8_t* w, int N, int k0, int k1, int j0, int nc,
                           float* acc, int ldacc) {
  walk::krange<walk::Avx512Vec, LoadI8>(x, M, ldx, w, N, k0, k1, j0, nc, acc, ldacc);
}

// Output j = dot(x[m], q row j): 8 rows at a time, 16 lanes each, the last K % 16 through
// a masked load (zeros add nothing).
void dots_i8_avx512(const float* x, int M, int ldx, const int8_t* w, int K, int j0, int nc, float* acc, int ldacc) {
  const int kv = K & ~15;
  const __mmask16 tail = __mmask16((1u << (K - kv)) - 1u);
  int j = 0;
  for (; j + 8 <= nc; j += 8) {
    const int8_t* rows = w + size_t(j0 + j) * K;
    for (int m = 0; m < M; ++m) {
      const float* xm = x + size_t(m) * ldx;
      __m512 s[8];
      for (int i = 0; i < 8; ++i) s[i] = _mm512_setzero_ps();
      for (int k = 0; k < kv; k += 16) {
        const __m512 xv = _mm512_loadu_ps(xm + k);
        for (int i = 0; i < 8; ++i) s[i] = _mm512_fmadd_ps(xv, load16_i8(rows + size_t(i) * K + k), s[i]);
      }
      if (kv < K) {
        const __m512 xv = _mm512_maskz_loadu_ps(tail, xm + kv);
        for (int i = 0; i < 8; ++i) s[i] = _mm512_fmadd_ps(xv, load16_i8_masked(rows + size_t(i) * K + kv, tail), s[i]);
      }
      _mm256_storeu_ps(acc + size_t(m) * ldacc + j,
                       reduce8(fold(s[0]), fold(s[1]), fold(s[2]), fold(s[3]), fold(s[4]), fold(s[5]), fold(s[6]), fold(s[7])));
    }
  }
  for (; j < nc; ++j) {
    const int8_t* row = w + size_t(j0 + j) * K;
    for (int m = 0; m < M; ++m) {
      const float* xm = x + size_t(m) * ldx;
      __m512 s = _mm512_setzero_ps();
      for (int k = 0; k < kv; k += 16) s = _mm512_fmadd_ps(_mm512_loadu_ps(xm + k), load16_i8(row + k), s);
      if (kv < K) s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, xm + kv), load16_i8_masked(row + kv, tail), s);
      acc[size_t(m) * ldacc + j] = hsum16(s);
    }
  }
}

void dequant_i8_avx512(const int8_t* q, const float* scales, float* dst, int n) {
  int i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_mul_ps(load16_i8(q + i), _mm512_loadu_ps(scales + i)));
  if (i < n) {
    const __mmask16 m = __mmask16((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_mul_ps(load16_i8_masked(q + i, m), _mm512_maskz_loadu_ps(m, scales + i)));
  }
}

}  // namespace jb

#endif
