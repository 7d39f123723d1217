// The walk over a band of W's rows that the AVX-512 few-row kernels share (gemv.h's
// gemv_krange contract), for any weight type through a loader:
//   struct Loader { static constexpr int kBytes;               // bytes per weight
//                   static __m512 load16(const void* w, size_t i);  // W[i .. i+16) as fp32
//                   static float load1(const void* w, size_t i); };
// Included only by *_avx512.cc files (compiled with AVX-512 flags).
//
// Every output is acc = 0, then acc = fma(x[k], W[k][j], acc) for k in order (the
// matrix's last N % 16 columns: acc += x[k] * W[k][j], unfused), so the blocking below
// never changes a bit of the result: the AVX2 kernel gives the same.
//
// Why this walk (measured on a 2-core Zen 5 VM, bench/prior-bench.mjs and a standalone
// timing of this function): decoding is bound by reading W once, and batched decoding
// multiplies the arithmetic per weight by the batch, so the memory stream must keep going
// while the FMAs run.
//  - All the rows of x sweep each block of U rows x 16C columns of W while it sits in L1:
//    W is read from memory once for any batch (the earlier kernel read it once per group of
//    4 rows, twice at batch 8 and four times at 16).
//  - The accumulators stay in registers for U rows of W (16 for up to 4 rows of x, 32
//    above), so their loads and stores are a small share of the instructions.
//  - The rows of the next block are prefetched while this block is computed: at the same
//    columns, one block ahead. The hardware prefetchers alone left the core waiting on
//    memory between blocks (the band is U interleaved row streams): batch 4 streamed half
//    the bandwidth that batch 1 did.
//  - Columns go in chunks of kChunk, so the accumulators of a chunk (rows x kChunk floats)
//    stay in L1/L2 and one block ahead is U rows x 4-8 KB.
#pragma once
#include <immintrin.h>

#include <cstddef>

namespace jb {
namespace walk512 {

constexpr int kChunk = 2048;  // columns per chunk (a multiple of 256: every block width divides it)

template <int R, int C, class L>
inline void block(const float* x, int ldx, const void* w, int N, int kb, int ke, bool first, int j, float* a,
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
      const __m512 wv = L::load16(w, base + 16 * c);
      for (int r = 0; r < R; ++r) acc[r][c] = _mm512_fmadd_ps(xv[r], wv, acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(a + size_t(r) * ldacc + 16 * c, acc[r][c]);
}

// W rows [r0, r1), columns [j, j + cols), into L1 (a hint: never faults, never changes data).
template <class L>
inline void prefetch_rows(const void* w, int N, int r0, int r1, int j, int cols) {
  const char* base = static_cast<const char*>(w);
  const int bytes = cols * L::kBytes;
  for (int r = r0; r < r1; ++r) {
    const char* p = base + (size_t(r) * N + j) * L::kBytes;
    for (int off = 0; off < bytes; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
  }
}

// All M rows of x against one block (rows 4 at a time, then the rest).
template <int C, class L>
inline void rows_block(const float* x, int M, int ldx, const void* w, int N, int kb, int ke, bool first, int j,
                       float* a, int ldacc) {
  if constexpr (C == 16) {  // 16 accumulators: one row at a time
    for (int m = 0; m < M; ++m) block<1, 16, L>(x + size_t(m) * ldx, ldx, w, N, kb, ke, first, j, a + size_t(m) * ldacc, ldacc);
  } else if constexpr (C == 8) {  // two rows at a time
    int m = 0;
    for (; m + 2 <= M; m += 2) block<2, 8, L>(x + size_t(m) * ldx, ldx, w, N, kb, ke, first, j, a + size_t(m) * ldacc, ldacc);
    if (m < M) block<1, 8, L>(x + size_t(m) * ldx, ldx, w, N, kb, ke, first, j, a + size_t(m) * ldacc, ldacc);
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

// Columns [js, je) of rows [kb, ke) in blocks of 16 * C columns (C = WIDE while they fit,
// then 4, then 1), the next block's rows [pf0, pf1) prefetched at the same columns.
template <int WIDE, class L>
inline void sweep(const float* x, int M, int ldx, const void* w, int N, int kb, int ke, bool first, int js, int je,
                  int j0, float* acc, int ldacc, int pf0, int pf1) {
  int j = js;
  for (; j + 16 * WIDE <= je; j += 16 * WIDE) {
    prefetch_rows<L>(w, N, pf0, pf1, j, 16 * WIDE);
    rows_block<WIDE, L>(x, M, ldx, w, N, kb, ke, first, j, acc + (j - j0), ldacc);
  }
  for (; j + 64 <= je; j += 64) {
    prefetch_rows<L>(w, N, pf0, pf1, j, 64);
    rows_block<4, L>(x, M, ldx, w, N, kb, ke, first, j, acc + (j - j0), ldacc);
  }
  for (; j < je; j += 16) {
    prefetch_rows<L>(w, N, pf0, pf1, j, 16);
    rows_block<1, L>(x, M, ldx, w, N, kb, ke, first, j, acc + (j - j0), ldacc);
  }
}

// gemv_krange over rows [k0, k1) and columns [j0, j1) of W (row stride N), the vector
// columns below jv (j0 + a multiple of 16, or j0), the rest scalar. acc (M x (j1 - j0),
// row stride ldacc) is overwritten.
template <class L>
void krange(const float* x, int M, int ldx, const void* w, int N, int k0, int k1, int j0, int jv, int j1, float* acc,
            int ldacc) {
  if (k0 >= k1) {
    for (int r = 0; r < M; ++r)
      for (int j = j0; j < j1; ++j) acc[size_t(r) * ldacc + (j - j0)] = 0.0f;
    return;
  }
  // Blocks of 16 accumulators: one row of x against 256 columns; 2-4 rows, and any number
  // of rows of fp16 or int8 (whose widening is paid once per row pair), two rows at a time
  // against 128; more fp32 rows four at a time against 64 (fewer loads from L1 per FMA).
  // The wider the block, the longer each row's run in memory (which the prefetchers serve
  // better): at batch 4 the 128-column pairs streamed 10-25% more than 64-column quads.
  const int U = M <= 4 ? 16 : 32;
  for (int jc = j0; jc < jv; jc += kChunk) {
    const int jce = jv < jc + kChunk ? jv : jc + kChunk;
    for (int kb = k0; kb < k1; kb += U) {
      const int ke = kb + U < k1 ? kb + U : k1;
      const int pf1 = ke + U < k1 ? ke + U : k1;
      const bool first = kb == k0;
      if (M == 1) {
        sweep<16, L>(x, M, ldx, w, N, kb, ke, first, jc, jce, j0, acc, ldacc, ke, pf1);
      } else if (M <= 4 || L::kBytes < 4) {
        sweep<8, L>(x, M, ldx, w, N, kb, ke, first, jc, jce, j0, acc, ldacc, ke, pf1);
      } else {
        sweep<4, L>(x, M, ldx, w, N, kb, ke, first, jc, jce, j0, acc, ldacc, ke, pf1);
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

}  // namespace walk512
}  // namespace jb
