// AVX-512 nearest-code search: 8 rows at a time against 16 codes (two of the codebook's
// 8-code blocks joined in one zmm), so each pair of codebook loads feeds 8 FMAs. The
// distances are computed exactly as in vq_avx2.cc (dot as one FMA chain over d, then
// (||x||^2 - 2 dot) + ||k||^2), so the chosen indices are the same; per lane a strict <
// keeps the first index, and the final reduction picks the smallest distance and, among
// equal ones, the smallest index. Compiled with AVX-512 flags and reached only through
// kAvx512Kernels; no standard-library templates here (see gemm_ukernel_avx512.cc).
#include "vq.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace jb {

namespace {

constexpr int kRows = 8;

inline float row_norm(const float* x, int w) {
  float s = 0;
  for (int d = 0; d < w; ++d) s += x[d] * x[d];
  return s;
}

inline int32_t reduce(__m512 val, __m512i idx) {
  alignas(64) float v[16];
  alignas(64) int32_t ix[16];
  _mm512_store_ps(v, val);
  _mm512_store_si512(ix, idx);
  int best = 0;
  for (int l = 1; l < 16; ++l)
    if (v[l] < v[best] || (v[l] == v[best] && ix[l] < ix[best])) best = l;
  return ix[best];
}

}  // namespace

void vq_rows_avx512(const Codebook& cb, const float* x, int r0, int r1, int32_t* out) {
  const int w = cb.width();
  const int nblk = cb.blocks8();
  const int bins = cb.bins();
  const float* packed = cb.packed();
  const float* norms = cb.norms();
  const __m512 inf = _mm512_set1_ps(__builtin_inff());
  const __m512 two = _mm512_set1_ps(2.0f);
  // lanes 0-7: codes 16g + l of block 2g; lanes 8-15: codes 16g + 8 + l of block 2g + 1
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int i = r0; i < r1; i += kRows) {
    const int rows = (r1 - i) < kRows ? (r1 - i) : kRows;
    const float* xr[kRows];
    __m512 xx[kRows], best[kRows];
    __m512i arg[kRows];
    for (int r = 0; r < kRows; ++r) {
      xr[r] = x + size_t(i + (r < rows ? r : 0)) * w;
      xx[r] = _mm512_set1_ps(row_norm(xr[r], w));
      best[r] = inf;
      arg[r] = _mm512_setzero_si512();
    }
    for (int blk = 0; blk < nblk; blk += 2) {
      const float* k0 = packed + size_t(blk) * w * 8;
      const bool pair = blk + 1 < nblk;
      const float* k1 = pair ? k0 + size_t(w) * 8 : k0;  // an odd last block: upper lanes masked below
      __m512 acc[kRows];
      for (int r = 0; r < kRows; ++r) acc[r] = _mm512_setzero_ps();
      for (int d = 0; d < w; ++d) {
        const __m512 k = _mm512_insertf32x8(_mm512_zextps256_ps512(_mm256_load_ps(k0 + d * 8)), _mm256_load_ps(k1 + d * 8), 1);
        for (int r = 0; r < kRows; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(xr[r][d]), k, acc[r]);
      }
      // Lanes past the last code get +inf so they never win.
      const int first = blk * 8;
      const int valid = bins - first < 16 ? bins - first : 16;
      const __mmask16 m = __mmask16((1u << valid) - 1u);
      const __m512 kk = _mm512_mask_loadu_ps(inf, m, norms + first);
      const __m512i idx = _mm512_add_epi32(lane, _mm512_set1_epi32(first));
      for (int r = 0; r < kRows; ++r) {
        const __m512 dist = _mm512_add_ps(_mm512_sub_ps(xx[r], _mm512_mul_ps(two, acc[r])), kk);
        const __mmask16 lt = _mm512_cmp_ps_mask(dist, best[r], _CMP_LT_OQ);
        best[r] = _mm512_mask_mov_ps(best[r], lt, dist);
        arg[r] = _mm512_mask_mov_epi32(arg[r], lt, idx);
      }
    }
    for (int r = 0; r < rows; ++r) out[i + r] = reduce(best[r], arg[r]);
  }
}

}  // namespace jb

#endif
