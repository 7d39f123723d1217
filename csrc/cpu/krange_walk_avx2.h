// The AVX2 version of krange_walk_avx512.h (read that file for the why): the same walk
// with 8-column vectors and 16 registers, for the AVX2 few-row kernels (gemv_avx2.cc),
// through a loader:
//   struct Loader { static constexpr int kBytes;               // bytes per weight
//                   static __m256 load8(const void* w, size_t i);   // W[i .. i+8) as fp32
//                   static float load1(const void* w, size_t i); };
// Included only by gemv_avx2.cc: every function carries the AVX2 target attribute, so the
// file needs no AVX2 compiler flags and nothing here runs unless cpu_features chose AVX2.
//
// Every output is acc = 0, then acc = fma(x[k], W[k][j], acc) for k in order (the
// matrix's last N % 16 columns: acc += x[k] * W[k][j], unfused): the AVX-512 kernel's bits.
#pragma once
#include <immintrin.h>

#include <cstddef>

namespace jb {
#ifndef PAIRS
#define PAIRS 1
#endif
namespace walk256 {

#define JB_WALK_AVX2 __attribute__((target("avx2,fma,f16c")))

constexpr int kChunk = 2048;  // columns per chunk (a multiple of 256: every block width divides it)

template <int R, int C, class L>
JB_WALK_AVX2 inline void block(const float* x, int ldx, const void* w, int N, int kb, int ke, bool first, int j, float* a,
                  int ldacc) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      acc[r][c] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(a + size_t(r) * ldacc + 8 * c);
  for (int k = kb; k < ke; ++k) {
    const size_t base = size_t(k) * N + j;
    __m256 xv[R];
    for (int r = 0; r < R; ++r) xv[r] = _mm256_broadcast_ss(x + size_t(r) * ldx + k);
    for (int c = 0; c < C; ++c) {
      const __m256 wv = L::load8(w, base + 8 * c);
      for (int r = 0; r < R; ++r) acc[r][c] = _mm256_fmadd_ps(xv[r], wv, acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) _mm256_storeu_ps(a + size_t(r) * ldacc + 8 * c, acc[r][c]);
}

// W rows [r0, r1), columns [j, j + cols), into L1 (a hint: never faults, never changes data).
template <class L>
JB_WALK_AVX2 inline void prefetch_rows(const void* w, int N, int r0, int r1, int j, int cols) {
  const char* base = static_cast<const char*>(w);
  const int bytes = cols * L::kBytes;
  for (int r = r0; r < r1; ++r) {
    const char* p = base + (size_t(r) * N + j) * L::kBytes;
    for (int off = 0; off < bytes; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
  }
}

// All M rows of x against one block: C = 8 one row at a time, 4 two at a time, 3 three at a
// time against 32 columns, 2 four at a time against 16.
template <int C, class L>
JB_WALK_AVX2 inline void rows_block(const float* x, int M, int ldx, const void* w, int N, int kb, int ke, bool first, int j,
                       float* a, int ldacc) {
  if constexpr (C == 8) {  // 8 accumulators: one row at a time
    for (int m = 0; m < M; ++m) block<1, 8, L>(x + size_t(m) * ldx, ldx, w, N, kb, ke, first, j, a + size_t(m) * ldacc, ldacc);
  } else if constexpr (C == 4) {  // two rows at a time
    int m = 0;
    for (; m + 2 <= M; m += 2) block<2, 4, L>(x + size_t(m) * ldx, ldx, w, N, kb, ke, first, j, a + size_t(m) * ldacc, ldacc);
    if (m < M) block<1, 4, L>(x + size_t(m) * ldx, ldx, w, N, kb, ke, first, j, a + size_t(m) * ldacc, ldacc);
  } else if constexpr (C == 3) {  // three rows at a time against 32 columns
    int m = 0;
    for (; m + 3 <= M; m += 3) block<3, 4, L>(x + size_t(m) * ldx, ldx, w, N, kb, ke, first, j, a + size_t(m) * ldacc, ldacc);
    if (M - m == 2) block<2, 4, L>(x + size_t(m) * ldx, ldx, w, N, kb, ke, first, j, a + size_t(m) * ldacc, ldacc);
    if (M - m == 1) block<1, 4, L>(x + size_t(m) * ldx, ldx, w, N, kb, ke, first, j, a + size_t(m) * ldacc, ldacc);
  } else {  // four rows at a time, then the rest
    int m = 0;
    for (; m + 4 <= M; m += 4) block<4, C, L>(x + size_t(m) * ldx, ldx, w, N, kb, ke, first, j, a + size_t(m) * ldacc, ldacc);
    switch (M - m) {
      case 3: block<3, C, L>(x + size_t(m) * ldx, ldx, w, N, kb, ke, first, j, a + size_t(m) * ldacc, ldacc); break;
      case 2: block<2, C, L>(x + size_t(m) * ldx, ldx, w, N, kb, ke, first, j, a + size_t(m) * ldacc, ldacc); break;
      case 1: block<1, C, L>(x + size_t(m) * ldx, ldx, w, N, kb, ke, first, j, a + size_t(m) * ldacc, ldacc); break;
      default: break;
    }
  }
}

// Columns [js, je) of rows [kb, ke) in blocks of 8 * WIDE columns (32 for the triples of
// WIDE = 3) while they fit, then 16, the next block's rows [pf0, pf1) prefetched at the same columns.
template <int WIDE, class L>
JB_WALK_AVX2 inline void sweep(const float* x, int M, int ldx, const void* w, int N, int kb, int ke, bool first, int js,
                               int je, int j0, float* acc, int ldacc, int pf0, int pf1) {
  int j = js;
  constexpr int cols = WIDE == 3 ? 32 : 8 * WIDE;
  for (; j + cols <= je; j += cols) {
    prefetch_rows<L>(w, N, pf0, pf1, j, cols);
    rows_block<WIDE, L>(x, M, ldx, w, N, kb, ke, first, j, acc + (j - j0), ldacc);
  }
  for (; j < je; j += 16) {  // (the vector columns come in 16s)
    prefetch_rows<L>(w, N, pf0, pf1, j, 16);
    rows_block<2, L>(x, M, ldx, w, N, kb, ke, first, j, acc + (j - j0), ldacc);
  }
}

// gemv_krange over rows [k0, k1) and columns [j0, j1) of W (row stride N), the vector
// columns below jv (j0 + a multiple of 16, or j0), the rest scalar. acc (M x (j1 - j0),
// row stride ldacc) is overwritten.
template <class L>
JB_WALK_AVX2 void krange(const float* x, int M, int ldx, const void* w, int N, int k0, int k1, int j0, int jv, int j1, float* acc,
            int ldacc) {
  if (k0 >= k1) {
    for (int r = 0; r < M; ++r)
      for (int j = j0; j < j1; ++j) acc[size_t(r) * ldacc + (j - j0)] = 0.0f;
    return;
  }
  // Blocks of 8 accumulators: one row of x against 64 columns; 2-4 rows (and any number of
  // rows of fp16 or int8) two at a time against 32; more fp32 rows three at a time against
  // 32 (12 accumulators, 16 registers in all: fewer loads per FMA than pairs or quads of 16
  // columns, which measured 10-20% slower at 12-16 rows on Zen 5 with JUKEBOX_CPU=avx2-fma).
  const int U = M <= 4 ? 16 : 32;
  for (int jc = j0; jc < jv; jc += kChunk) {
    const int jce = jv < jc + kChunk ? jv : jc + kChunk;
    for (int kb = k0; kb < k1; kb += U) {
      const int ke = kb + U < k1 ? kb + U : k1;
      const int pf1 = ke + U < k1 ? ke + U : k1;
      const bool first = kb == k0;
      if (M == 1) {
        sweep<8, L>(x, M, ldx, w, N, kb, ke, first, jc, jce, j0, acc, ldacc, ke, pf1);
      } else if (M <= 4 || L::kBytes < 4) {
        sweep<4, L>(x, M, ldx, w, N, kb, ke, first, jc, jce, j0, acc, ldacc, ke, pf1);
      } else {
        sweep<3, L>(x, M, ldx, w, N, kb, ke, first, jc, jce, j0, acc, ldacc, ke, pf1);
      }
    }
  }
  if (jv >= j1) return;
  for (int r = 0; r < M; ++r)
    for (int j = jv; j < j1; ++j) acc[size_t(r) * ldacc + (j - j0)] = 0.0f;
  for (int k = k0; k < k1; ++k) {
    const size_t base = size_t(k) * N;
    for (int j = jv; j < j1; ++j) {
      const float wv = L::load1(w, base + j);
      for (int r = 0; r < M; ++r) acc[size_t(r) * ldacc + (j - j0)] += x[size_t(r) * ldx + k] * wv;
    }
  }
}

#undef JB_WALK_AVX2

}  // namespace walk256
}  // namespace jb
