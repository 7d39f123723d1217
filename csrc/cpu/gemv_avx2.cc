// AVX2/FMA/F16C few-row kernels (see gemv.h). Compiled for those extensions in this file
// only and called only when cpu_features reports them; no standard-library templates here
// (see gemm_ukernel_avx2.cc).
#include "gemv.h"

#include "../core/half.h"

#if defined(__x86_64__)
#include <immintrin.h>

// The walk of the band kernels, compiled here for AVX2 (every function it defines takes
// this target; nothing here runs unless cpu_features chose AVX2).
#define JB_WALK_TARGET __attribute__((target("avx2,fma,f16c")))
#include "krange_walk.h"

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

// 8 outputs at a time: 8 independent accumulation chains instead of one (the single
// chain was FMA-latency bound), and one transposing reduction for the 8. Per output the
// arithmetic is exactly the one-at-a-time loop's: lane l accumulates x[k] * w[k] for
// k = l (mod 8) in order, the lanes are summed as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7))
// (hadd pairs lanes the same way; a+b == b+a exactly), then the scalar tail in order.
__attribute__((target("avx2,fma,f16c"))) inline __m256 reduce8(__m256 s0, __m256 s1, __m256 s2, __m256 s3, __m256 s4,
                                                               __m256 s5, __m256 s6, __m256 s7) {
  const __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
  const __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(s4, s5), _mm256_hadd_ps(s6, s7));
  return _mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t0, t1, 0x31));
}

template <bool F16>
__attribute__((target("avx2,fma,f16c"))) void dots_impl(const float* x, int M, int ldx, const void* w, int K, int j0,
                                                         int nc, float* acc, int ldacc) {
  const int kv = K & ~7;
  int j = 0;
  for (; j + 8 <= nc; j += 8) {
    const size_t row = size_t(j0 + j) * K;
    for (int m = 0; m < M; ++m) {
      const float* xm = x + size_t(m) * ldx;
      __m256 s[8];
      for (int i = 0; i < 8; ++i) s[i] = _mm256_setzero_ps();
      for (int k = 0; k < kv; k += 8) {
        const __m256 xv = _mm256_loadu_ps(xm + k);
        for (int i = 0; i < 8; ++i) s[i] = _mm256_fmadd_ps(xv, load8<F16>(w, row + size_t(i) * K + k), s[i]);
      }
      const __m256 r = reduce8(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
      float* out = acc + size_t(m) * ldacc + j;
      if (kv == K) {
        _mm256_storeu_ps(out, r);
      } else {
        alignas(32) float tot[8];
        _mm256_store_ps(tot, r);
        for (int i = 0; i < 8; ++i) {
          float t = tot[i];
          for (int k = kv; k < K; ++k) t += xm[k] * load1<F16>(w, row + size_t(i) * K + k);
          out[i] = t;
        }
      }
    }
  }
  for (; j < nc; ++j) {
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

// The AVX2 register traits of krange_walk.h: 8 accumulators per block (1 row x 64 columns,
// pairs x 32), fp32 past 4 rows in triples x 32 (12 accumulators, 16 registers in all: fewer
// loads per FMA than pairs or quads of 16 columns, which measured 10-20% slower at 12-16
// rows on Zen 5 with JUKEBOX_CPU=avx2-fma); quads x 16 at the band's edge.
struct Avx2Vec {
  using Reg = __m256;
  static constexpr int kLanes = 8;
  static constexpr int kOneRowC = 8, kPairC = 4, kManyRows = 3, kManyC = 4, kMidC = 0, kTailC = 2;
  __attribute__((target("avx2,fma,f16c"))) static Reg zero() { return _mm256_setzero_ps(); }
  __attribute__((target("avx2,fma,f16c"))) static Reg load(const float* p) { return _mm256_loadu_ps(p); }
  __attribute__((target("avx2,fma,f16c"))) static void store(float* p, Reg v) { _mm256_storeu_ps(p, v); }
  __attribute__((target("avx2,fma,f16c"))) static Reg bcast(const float* p) { return _mm256_broadcast_ss(p); }
  __attribute__((target("avx2,fma,f16c"))) static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
};

// The fp32 and fp16 loaders of krange_walk.h.
struct LoadF32 {
  static constexpr int kBytes = 4;
  __attribute__((target("avx2,fma,f16c"))) static __m256 load(const void* w, size_t i) { return jb::load8<false>(w, i); }
  __attribute__((target("avx2,fma,f16c"))) static float load1(const void* w, size_t i) { return jb::load1<false>(w, i); }
};
struct LoadBF16 {  // bf16 -> fp32 is exact: the 16 bits are the float's top half
  static constexpr int kBytes = 2;
  __attribute__((target("avx2,fma,f16c"))) static __m256 load(const void* w, size_t i) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static float load1(const void* w, size_t i) { return bf16_to_float(static_cast<const uint16_t*>(w)[i]); }
};
struct LoadF16 {
  static constexpr int kBytes = 2;
  __attribute__((target("avx2,fma,f16c"))) static __m256 load(const void* w, size_t i) { return jb::load8<true>(w, i); }
  __attribute__((target("avx2,fma,f16c"))) static float load1(const void* w, size_t i) { return jb::load1<true>(w, i); }
};

}  // namespace

void gemv_krange_avx2(const float* x, int M, int ldx, const void* w, bool f16, int N, int k0, int k1, int j0, int nc,
                      float* acc, int ldacc) {
  // (all M rows sweep each block of W, so a batch of any size reads every weight once)
  if (f16) {
    walk::krange<Avx2Vec, LoadF16>(x, M, ldx, w, N, k0, k1, j0, nc, acc, ldacc);
  } else {
    walk::krange<Avx2Vec, LoadF32>(x, M, ldx, w, N, k0, k1, j0, nc, acc, ldacc);
  }
}

void gemv_krange_bf16_avx2(const float* x, int M, int ldx, const uint16_t* w, int N, int k0, int k1, int j0, int nc,
                           float* acc, int ldacc) {
  walk::krange<Avx2Vec, LoadBF16>(x, M, ldx, w, N, k0, k1, j0, nc, acc, ldacc);
}

__attribute__((target("avx2,fma,f16c"))) void widen_f16_avx2(const uint16_t* src, float* dst, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  for (; i < n; ++i) dst[i] = _cvtsh_ss(src[i]);
}

void dots_avx2(const float* x, int M, int ldx, const void* w, bool f16, int K, int j0, int nc, float* acc,
               int ldacc) {
  if (f16) {
    dots_impl<true>(x, M, ldx, w, K, j0, nc, acc, ldacc);
  } else {
    dots_impl<false>(x, M, ldx, w, K, j0, nc, acc, ldacc);
  }
}


// int8 weights (gemv.h's int8 contracts): 8 int8 weights per load, sign-extended and
// converted to fp32 in registers (vpmovsxbd + vcvtdq2ps, both exact), walked as the fp16
// kernel walks its band (krange_walk.h).
#define JB_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace {
namespace i8 {

JB_AVX2 inline __m256 load8_i8(const int8_t* w) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w))));
}

// The int8 loader of krange_walk.h (values unscaled: gemv.h).
struct LoadI8 {
  static constexpr int kBytes = 1;
  JB_AVX2 static __m256 load(const void* w, size_t i) { return load8_i8(static_cast<const int8_t*>(w) + i); }
  JB_AVX2 static float load1(const void* w, size_t i) { return float(static_cast<const int8_t*>(w)[i]); }
};

JB_AVX2 inline __m256 reduce8(__m256 s0, __m256 s1, __m256 s2, __m256 s3, __m256 s4, __m256 s5, __m256 s6, __m256 s7) {
  const __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
  const __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(s4, s5), _mm256_hadd_ps(s6, s7));
  return _mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t0, t1, 0x31));
}

}  // namespace i8
}  // namespace

JB_AVX2 void gemv_krange_i8_avx2(const float* x, int M, int ldx, const int8_t* w, int N, int k0, int k1, int j0,
                                 int nc, float* acc, int ldacc) {
  walk::krange<Avx2Vec, i8::LoadI8>(x, M, ldx, w, N, k0, k1, j0, nc, acc, ldacc);
}

// 8 rows of W at a time, 8 lanes each, reduced as gemv_avx2.cc's dots; the last K % 8
// elements scalar.
JB_AVX2 void dots_i8_avx2(const float* x, int M, int ldx, const int8_t* w, int K, int j0, int nc, float* acc,
                          int ldacc) {
  const int kv = K & ~7;
  int j = 0;
  for (; j + 8 <= nc; j += 8) {
    const int8_t* rows = w + size_t(j0 + j) * K;
    for (int m = 0; m < M; ++m) {
      const float* xm = x + size_t(m) * ldx;
      __m256 s[8];
      for (int i = 0; i < 8; ++i) s[i] = _mm256_setzero_ps();
      for (int k = 0; k < kv; k += 8) {
        const __m256 xv = _mm256_loadu_ps(xm + k);
        for (int i = 0; i < 8; ++i) s[i] = _mm256_fmadd_ps(xv, i8::load8_i8(rows + size_t(i) * K + k), s[i]);
      }
      alignas(32) float tot[8];
      _mm256_store_ps(tot, i8::reduce8(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]));
      for (int i = 0; i < 8; ++i) {
        float t = tot[i];
        for (int k = kv; k < K; ++k) t += xm[k] * float(rows[size_t(i) * K + k]);
        acc[size_t(m) * ldacc + j + i] = t;
      }
    }
  }
  for (; j < nc; ++j) {
    const int8_t* row = w + size_t(j0 + j) * K;
    for (int m = 0; m < M; ++m) {
      const float* xm = x + size_t(m) * ldx;
      __m256 s = _mm256_setzero_ps();
      for (int k = 0; k < kv; k += 8) s = _mm256_fmadd_ps(_mm256_loadu_ps(xm + k), i8::load8_i8(row + k), s);
      alignas(32) float l[8];
      _mm256_store_ps(l, s);
      float t = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
      for (int k = kv; k < K; ++k) t += xm[k] * float(row[k]);
      acc[size_t(m) * ldacc + j] = t;
    }
  }
}

JB_AVX2 void dequant_i8_avx2(const int8_t* q, const float* scales, float* dst, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_mul_ps(i8::load8_i8(q + i), _mm256_loadu_ps(scales + i)));
  for (; i < n; ++i) dst[i] = float(q[i]) * scales[i];
}

}  // namespace jb

#else

namespace jb {
// Non-x86 builds never call these (cpu_features reports Generic there).
void gemv_krange_avx2(const float*, int, int, const void*, bool, int, int, int, int, int, float*, int) {}
void dots_avx2(const float*, int, int, const void*, bool, int, int, int, float*, int) {}
void widen_f16_avx2(const uint16_t*, float*, int) {}
void gemv_krange_i8_avx2(const float*, int, int, const int8_t*, int, int, int, int, int, float*, int) {}
void gemv_krange_bf16_avx2(const float*, int, int, const uint16_t*, int, int, int, int, int, float*, int) {}
void dots_i8_avx2(const float*, int, int, const int8_t*, int, int, int, float*, int) {}
void dequant_i8_avx2(const int8_t*, const float*, float*, int) {}
}  // namespace jb

#endif
