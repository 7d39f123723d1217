// The walk over a band of W's rows that the few-row kernels share (gemv.h's gemv_krange
// contract), for any vector width through a register type and any weight type through a
// loader:
//   struct Vec {                                   // Avx512Vec: 16 lanes, Avx2Vec: 8
//     using Reg = __m512;  static constexpr int kLanes;
//     static Reg zero(); static Reg load(const float*); static void store(float*, Reg);
//     static Reg bcast(const float*); static Reg fma(Reg a, Reg b, Reg c);  // a * b + c
//     static constexpr int kOneRowC, kPairC, kManyRows, kManyC, kMidC, kTailC;  // block shapes
//   };
//   struct Loader { static constexpr int kBytes;                   // bytes per weight
//     static Vec::Reg load(const void* w, size_t i);                 // W[i .. i+lanes) as fp32
//     static float load1(const void* w, size_t i); };
// Included by gemv_avx512.cc and gemv_i8_avx512.cc (compiled with AVX-512 flags) and by
// gemv_avx2.cc, which first defines JB_WALK_TARGET as its target attribute (AVX2, FMA,
// F16C) so that every function here is compiled for it (a per-function attribute, which
// GCC and clang both take; clang ignores `#pragma GCC target`). Nothing here runs unless
// cpu_features chose that ISA.
//
// Every output is acc = 0, then acc = fma(x[k], W[k][j], acc) for k in order (the
// matrix's last N % 16 columns: acc += x[k] * W[k][j], unfused), so the blocking below
// never changes a bit of the result: AVX2 and AVX-512 give the same.
//
// Why this walk (measured on a 2-core Zen 5 VM, bench/prior-bench.mjs, bench/linear-bench.mjs
// and a standalone timing of this function; BENCHMARKS.md, session 6): decoding is bound by
// reading W once, and batched decoding multiplies the arithmetic per weight by the batch,
// so the memory stream must keep going while the FMAs run.
//  - All the rows of x sweep each block of U rows x (lanes * C) columns of W while it sits
//    in L1: W is read from memory once for any batch (the earlier kernel read it once per
//    group of 4 rows, twice at batch 8 and four times at 16).
//  - The accumulators stay in registers for U rows of W (16 for up to 4 rows of x, 32
//    above), so their loads and stores are a small share of the instructions.
//  - The rows of the next block are prefetched while this block is computed: at the same
//    columns, one block ahead. The hardware prefetchers alone left the core waiting on
//    memory between blocks (the band is U interleaved row streams): batch 4 streamed half
//    the bandwidth that batch 1 did.
//  - Columns go in chunks of kChunk, so the accumulators of a chunk (rows x kChunk floats)
//    stay in L1/L2 and one block ahead is U rows x 4-8 KB.
//  - Block shapes (Vec's constants): one row of x against the widest block (kOneRowC
//    vectors); 2-4 rows, and any number of rows of fp16 / bf16 / int8 (whose widening is
//    then paid once per row pair), two rows at a time (kPairC); more fp32 rows kManyRows at
//    a time (kManyC: fewer loads from L1 per FMA). The wider the block, the longer each
//    row's run in memory, which the prefetchers serve better: at batch 4 the AVX-512 pairs
//    of 128 columns streamed 10-25% more than quads of 64.
#pragma once
#include <immintrin.h>

#include <cstddef>

#ifndef JB_WALK_TARGET
#define JB_WALK_TARGET
#endif

namespace jb {
namespace walk {

constexpr int kChunk = 2048;  // columns per chunk (a multiple of 256: every block width divides it)

template <class V, class L, int R, int C>
JB_WALK_TARGET inline void block(const float* x, int ldx, const void* w, int N, int kb, int ke, bool first, int j, float* a,
                  int ldacc) {
  typename V::Reg acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = first ? V::zero() : V::load(a + size_t(r) * ldacc + V::kLanes * c);
  for (int k = kb; k < ke; ++k) {
    const size_t base = size_t(k) * N + j;
    typename V::Reg xv[R];
    for (int r = 0; r < R; ++r) xv[r] = V::bcast(x + size_t(r) * ldx + k);
    // one weight vector live at a time: R*C + R + 1 registers, no spills
    for (int c = 0; c < C; ++c) {
      const typename V::Reg wv = L::load(w, base + V::kLanes * c);
      for (int r = 0; r < R; ++r) acc[r][c] = V::fma(xv[r], wv, acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) V::store(a + size_t(r) * ldacc + V::kLanes * c, acc[r][c]);
}

// W rows [r0, r1), columns [j, j + cols), into L1 (a hint: never faults, never changes data).
template <class L>
JB_WALK_TARGET inline void prefetch_rows(const void* w, int N, int r0, int r1, int j, int cols) {
  const char* base = static_cast<const char*>(w);
  const int bytes = cols * L::kBytes;
  for (int r = r0; r < r1; ++r) {
    const char* p = base + (size_t(r) * N + j) * L::kBytes;
    for (int off = 0; off < bytes; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
  }
}

// All M rows of x against one block of C vectors: RG rows at a time, then the rest.
template <class V, class L, int RG, int C>
JB_WALK_TARGET inline void rows_block(const float* x, int M, int ldx, const void* w, int N, int kb, int ke, bool first, int j,
                       float* a, int ldacc) {
  int m = 0;
  for (; m + RG <= M; m += RG)
    block<V, L, RG, C>(x + size_t(m) * ldx, ldx, w, N, kb, ke, first, j, a + size_t(m) * ldacc, ldacc);
  const int rest = M - m;
  const float* xm = x + size_t(m) * ldx;
  float* am = a + size_t(m) * ldacc;
  if constexpr (RG > 3) {
    if (rest == 3) block<V, L, 3, C>(xm, ldx, w, N, kb, ke, first, j, am, ldacc);
  }
  if constexpr (RG > 2) {
    if (rest == 2) block<V, L, 2, C>(xm, ldx, w, N, kb, ke, first, j, am, ldacc);
  }
  if constexpr (RG > 1) {
    if (rest == 1) block<V, L, 1, C>(xm, ldx, w, N, kb, ke, first, j, am, ldacc);
  }
}

// Columns [js, je) of rows [kb, ke): blocks of C vectors while they fit, then (AVX-512) of
// kMidC, then of 16 columns (the vector columns come in 16s); the next block's rows
// [pf0, pf1) prefetched at the same columns.
template <class V, class L, int RG, int C>
JB_WALK_TARGET inline void sweep(const float* x, int M, int ldx, const void* w, int N, int kb, int ke, bool first, int js, int je,
                  int j0, float* acc, int ldacc, int pf0, int pf1) {
  int j = js;
  for (; j + V::kLanes * C <= je; j += V::kLanes * C) {
    prefetch_rows<L>(w, N, pf0, pf1, j, V::kLanes * C);
    rows_block<V, L, RG, C>(x, M, ldx, w, N, kb, ke, first, j, acc + (j - j0), ldacc);
  }
  if constexpr (V::kMidC > 0 && V::kMidC < C) {
    for (; j + V::kLanes * V::kMidC <= je; j += V::kLanes * V::kMidC) {
      prefetch_rows<L>(w, N, pf0, pf1, j, V::kLanes * V::kMidC);
      rows_block<V, L, 4, V::kMidC>(x, M, ldx, w, N, kb, ke, first, j, acc + (j - j0), ldacc);
    }
  }
  for (; j < je; j += 16) {
    prefetch_rows<L>(w, N, pf0, pf1, j, 16);
    rows_block<V, L, 4, V::kTailC>(x, M, ldx, w, N, kb, ke, first, j, acc + (j - j0), ldacc);
  }
}

// gemv_krange over rows [k0, k1) and columns [j0, j0 + nc) of W (row stride N), j0 a
// multiple of 16: the matrix's vector columns (below N & ~15, the same split whatever the
// caller's column blocks) through the blocks, its last N % 16 columns scalar. acc
// (M x nc, row stride ldacc) is overwritten.
template <class V, class L>
JB_WALK_TARGET void krange(const float* x, int M, int ldx, const void* w, int N, int k0, int k1, int j0, int nc,
                           float* acc, int ldacc) {
  const int j1 = j0 + nc;
  const int nv = N & ~15;
  const int jv = j1 < nv ? j1 : (j0 > nv ? j0 : nv);
  if (k0 >= k1) {
    for (int r = 0; r < M; ++r)
      for (int j = j0; j < j1; ++j) acc[size_t(r) * ldacc + (j - j0)] = 0.0f;
    return;
  }
  const int U = M <= 4 ? 16 : 32;
  for (int jc = j0; jc < jv; jc += kChunk) {
    const int jce = jv < jc + kChunk ? jv : jc + kChunk;
    for (int kb = k0; kb < k1; kb += U) {
      const int ke = kb + U < k1 ? kb + U : k1;
      const int pf1 = ke + U < k1 ? ke + U : k1;
      const bool first = kb == k0;
      if (M == 1) {
        sweep<V, L, 1, V::kOneRowC>(x, M, ldx, w, N, kb, ke, first, jc, jce, j0, acc, ldacc, ke, pf1);
      } else if (M <= 4 || L::kBytes < 4) {
        sweep<V, L, 2, V::kPairC>(x, M, ldx, w, N, kb, ke, first, jc, jce, j0, acc, ldacc, ke, pf1);
      } else {
        sweep<V, L, V::kManyRows, V::kManyC>(x, M, ldx, w, N, kb, ke, first, jc, jce, j0, acc, ldacc, ke, pf1);
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

#if defined(__AVX512F__)
// The AVX-512 register traits (for the *_avx512.cc files; internal to each of them, so no
// AVX-512 copy of a function can be shared with code that runs on other CPUs).
namespace {
struct Avx512Vec {
  using Reg = __m512;
  static constexpr int kLanes = 16;
  // 16 accumulators per block: 1 row x 256 columns, pairs x 128, quads x 64; then quads
  // against 64 and 16 columns at the band's edge.
  static constexpr int kOneRowC = 16, kPairC = 8, kManyRows = 4, kManyC = 4, kMidC = 4, kTailC = 1;
  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, Reg v) { _mm512_storeu_ps(p, v); }
  static Reg bcast(const float* p) { return _mm512_set1_ps(*p); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
};
}  // namespace
#endif

}  // namespace walk
}  // namespace jb

#undef JB_WALK_TARGET
