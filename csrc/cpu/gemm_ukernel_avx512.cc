// AVX-512 GEMM kernels over the same packed panels as the AVX2 kernel (MR = 4 rows of a,
// NR = 24 columns of b per panel; gemm_ukernel.h).
//
// This file is compiled with AVX-512 flags (binding.gyp, target jukebox_avx512) and only
// reached through the kAvx512Kernels table when cpu_features reports AVX-512. Like every
// *_avx512.cc file it calls no standard-library template or header inline function that
// could be emitted here out of line: the linker could pick that AVX-512 copy for callers
// running on CPUs without AVX-512.
//
// The main kernel covers 2 x 2 panels per pass: 8 rows x 48 columns = 24 zmm accumulators
// (of 32 registers), 3 vectors of b and a broadcast of a. 48 columns are two 24-column
// panels: vector 0 is panel 0's columns 0-15, vector 2 panel 1's 8-23, and vector 1 joins
// panel 0's 16-23 with panel 1's 0-7 (one 256-bit insert per k). Per k: 24 FMAs (384
// multiply-adds) for 4 loads, 8 broadcasts and 1 shuffle, against the AVX2 kernel's 12 FMAs
// (96) for 3 loads and 4 broadcasts. On CPUs with two 512-bit FMA units (Xeon Scalable)
// that doubles the multiply-adds per cycle; on Zen 4, which runs a 512-bit FMA as two
// 256-bit halves, the peak is the AVX2 one and the gain is the instruction count.
//
// Every output is one FMA chain over k = 0..K-1 in order, as in ukernel_avx2: the results
// are bit-identical to the AVX2 kernel's.
#include "gemm_ukernel.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace jb {

namespace {

// PM a-panels (4 rows each) x PN b-panels (24 columns each), PM, PN in {1, 2}.
// a panel p at a + p * astride, b panel q at b + q * bstride; c row stride ldc.
template <int PM, int PN>
inline void block(int K, const float* a, long astride, const float* b, long bstride, float* c, int ldc,
                  bool accumulate) {
  constexpr int R = 4 * PM;
  const float* a0 = a;
  const float* a1 = a + (PM > 1 ? astride : 0);
  const float* b0 = b;
  const float* b1 = b + (PN > 1 ? bstride : 0);
  if (PN == 2) {
    __m512 acc[R][3];
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < 3; ++v) acc[r][v] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (int k = 0; k < K; ++k) {
      const __m512 x0 = _mm512_loadu_ps(b0);
      const __m512 x1 = _mm512_insertf32x8(_mm512_zextps256_ps512(_mm256_loadu_ps(b0 + 16)), _mm256_loadu_ps(b1), 1);
      const __m512 x2 = _mm512_loadu_ps(b1 + 8);
      for (int r = 0; r < 4; ++r) {
        const __m512 av = _mm512_set1_ps(a0[r]);
        acc[r][0] = _mm512_fmadd_ps(av, x0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(av, x1, acc[r][1]);
        acc[r][2] = _mm512_fmadd_ps(av, x2, acc[r][2]);
      }
      if (PM == 2) {
        for (int r = 0; r < 4; ++r) {
          const __m512 av = _mm512_set1_ps(a1[r]);
          acc[4 + r][0] = _mm512_fmadd_ps(av, x0, acc[4 + r][0]);
          acc[4 + r][1] = _mm512_fmadd_ps(av, x1, acc[4 + r][1]);
          acc[4 + r][2] = _mm512_fmadd_ps(av, x2, acc[4 + r][2]);
        }
      }
      a0 += kMR;
      a1 += kMR;
      b0 += kNR;
      b1 += kNR;
    }
    for (int r = 0; r < R; ++r) {
      float* cr = c + long(r) * ldc;
      for (int v = 0; v < 3; ++v) {
        const __m512 prev = accumulate ? _mm512_loadu_ps(cr + 16 * v) : _mm512_setzero_ps();
        _mm512_storeu_ps(cr + 16 * v, _mm512_add_ps(prev, acc[r][v]));
      }
    }
  } else {
    __m512 lo[R];
    __m256 hi[R];
    for (int r = 0; r < R; ++r) {
      lo[r] = _mm512_setzero_ps();
      hi[r] = _mm256_setzero_ps();
    }
#pragma GCC unroll 2
    for (int k = 0; k < K; ++k) {
      const __m512 x0 = _mm512_loadu_ps(b0);
      const __m256 x1 = _mm256_loadu_ps(b0 + 16);
      for (int r = 0; r < 4; ++r) {
        lo[r] = _mm512_fmadd_ps(_mm512_set1_ps(a0[r]), x0, lo[r]);
        hi[r] = _mm256_fmadd_ps(_mm256_set1_ps(a0[r]), x1, hi[r]);
      }
      if (PM == 2) {
        for (int r = 0; r < 4; ++r) {
          lo[4 + r] = _mm512_fmadd_ps(_mm512_set1_ps(a1[r]), x0, lo[4 + r]);
          hi[4 + r] = _mm256_fmadd_ps(_mm256_set1_ps(a1[r]), x1, hi[4 + r]);
        }
      }
      a0 += kMR;
      a1 += kMR;
      b0 += kNR;
    }
    for (int r = 0; r < R; ++r) {
      float* cr = c + long(r) * ldc;
      const __m512 p0 = accumulate ? _mm512_loadu_ps(cr) : _mm512_setzero_ps();
      const __m256 p1 = accumulate ? _mm256_loadu_ps(cr + 16) : _mm256_setzero_ps();
      _mm512_storeu_ps(cr, _mm512_add_ps(p0, lo[r]));
      _mm256_storeu_ps(cr + 16, _mm256_add_ps(p1, hi[r]));
    }
  }
}

}  // namespace

void ukernel_avx512(int K, const float* a, const float* b, float* c, int ldc, bool accumulate) {
  static_assert(kMR == 4 && kNR == 24, "these kernels are written for 4 x 24 panels");
  block<1, 1>(K, a, 0, b, 0, c, ldc, accumulate);
}

void tile_gemm_avx512(int K, const float* a, int panels_m, const float* b, int panels_n, float* c, int ldc) {
  const long as = long(K) * kMR, bs = long(K) * kNR;
  // b column pairs outer: the (up to 2 K x 24) b panels are reused by every row pair.
  int q = 0;
  for (; q + 2 <= panels_n; q += 2) {
    const float* bq = b + q * bs;
    float* cq = c + q * kNR;
    int p = 0;
    for (; p + 2 <= panels_m; p += 2) block<2, 2>(K, a + p * as, as, bq, bs, cq + long(p) * kMR * ldc, ldc, false);
    if (p < panels_m) block<1, 2>(K, a + p * as, as, bq, bs, cq + long(p) * kMR * ldc, ldc, false);
  }
  if (q < panels_n) {
    const float* bq = b + q * bs;
    float* cq = c + q * kNR;
    int p = 0;
    for (; p + 2 <= panels_m; p += 2) block<2, 1>(K, a + p * as, as, bq, bs, cq + long(p) * kMR * ldc, ldc, false);
    if (p < panels_m) block<1, 1>(K, a + p * as, as, bq, bs, cq + long(p) * kMR * ldc, ldc, false);
  }
}

// The conv packing reads, per column tile, one short segment (kConvTileCols floats)
// of every input row and tap: 64-192 streams of a few cache lines each, too many for the
// hardware prefetchers, so the packing waited on memory (~15% of a decode). Each call
// prefetches its row segment two tiles ahead: the calling thread's next tile when two
// threads take the tiles in turn, the one after next when one thread runs them all.
// (A prefetch never faults; past the end of a row it fetches a line that is not used.)
constexpr int kPrefetchAhead = 2 * kConvTileCols;

void pack_row_avx512(const float* src, float* dst, long dst_stride, int n, bool relu) {
  static_assert(kNR == 24, "a row is one zmm and one ymm");
  for (int i = 0; i < n; ++i, src += kNR, dst += dst_stride) {
    // (addresses as integers: the row may end before them)
    const __UINTPTR_TYPE__ ahead = reinterpret_cast<__UINTPTR_TYPE__>(src) + sizeof(float) * kPrefetchAhead;
    _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(ahead + 64), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(ahead + sizeof(float) * (kNR - 1)), _MM_HINT_T0);
    __m512 x0 = _mm512_loadu_ps(src);
    __m256 x1 = _mm256_loadu_ps(src + 16);
    if (relu) {
      x0 = _mm512_max_ps(x0, _mm512_setzero_ps());
      x1 = _mm256_max_ps(x1, _mm256_setzero_ps());
    }
    _mm512_storeu_ps(dst, x0);
    _mm256_storeu_ps(dst + 16, x1);
  }
}

}  // namespace jb

#endif
