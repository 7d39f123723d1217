// AVX2/FMA nearest-code search: 4 rows at a time against 16 codes, so each codebook load
// feeds 4 FMAs. Per lane a strict < keeps the first index; the final lane reduction picks
// the smallest distance and, among equal ones, the smallest index. Like every *_avx2.cc
// file, no standard-library templates here (see gemm_ukernel_avx2.cc).
#include "vq.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace jb {

namespace {

__attribute__((target("avx2,fma"))) inline float hsum_row_norm(const float* x, int w) {
  float s = 0;
  for (int d = 0; d < w; ++d) s += x[d] * x[d];
  return s;
}

struct Best {
  __m256 val;
  __m256i idx;
};

__attribute__((target("avx2,fma"))) inline void update(Best& b, __m256 dist, __m256i idx) {
  const __m256 lt = _mm256_cmp_ps(dist, b.val, _CMP_LT_OQ);
  b.val = _mm256_blendv_ps(b.val, dist, lt);
  b.idx = _mm256_castps_si256(
      _mm256_blendv_ps(_mm256_castsi256_ps(b.idx), _mm256_castsi256_ps(idx), lt));
}

__attribute__((target("avx2,fma"))) inline int32_t reduce(const Best& b) {
  alignas(32) float v[8];
  alignas(32) int32_t ix[8];
  _mm256_store_ps(v, b.val);
  _mm256_store_si256(reinterpret_cast<__m256i*>(ix), b.idx);
  int best = 0;
  for (int l = 1; l < 8; ++l)
    if (v[l] < v[best] || (v[l] == v[best] && ix[l] < ix[best])) best = l;
  return ix[best];
}

}  // namespace

__attribute__((target("avx2,fma"))) void vq_rows_avx2(const Codebook& cb, const float* x, int r0,
                                                       int r1, int32_t* out) {
  const int w = cb.width();
  const int nblk = cb.blocks8();
  const __m256 inf = _mm256_set1_ps(__builtin_inff());
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const float* norms = cb.norms();
  const int bins = cb.bins();
  for (int i = r0; i < r1; i += 4) {
    const int rows = (r1 - i) < 4 ? (r1 - i) : 4;
    const float* xr[4];
    __m256 xx[4];
    Best best[4];
    for (int r = 0; r < 4; ++r) {
      xr[r] = x + size_t(i + (r < rows ? r : 0)) * w;
      xx[r] = _mm256_set1_ps(hsum_row_norm(xr[r], w));
      best[r] = {inf, _mm256_setzero_si256()};
    }
    for (int blk = 0; blk < nblk; ++blk) {
      const float* kb = cb.packed() + size_t(blk) * w * 8;
      __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
      __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
      for (int d = 0; d < w; ++d) {
        const __m256 k = _mm256_load_ps(kb + d * 8);
        acc0 = _mm256_fmadd_ps(_mm256_broadcast_ss(xr[0] + d), k, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_broadcast_ss(xr[1] + d), k, acc1);
        acc2 = _mm256_fmadd_ps(_mm256_broadcast_ss(xr[2] + d), k, acc2);
        acc3 = _mm256_fmadd_ps(_mm256_broadcast_ss(xr[3] + d), k, acc3);
      }
      // Padding lanes past the last code get +inf so they never win.
      __m256 kk;
      if ((blk + 1) * 8 <= bins) {
        kk = _mm256_loadu_ps(norms + blk * 8);
      } else {
        alignas(32) float tmp[8];
        for (int l = 0; l < 8; ++l) tmp[l] = blk * 8 + l < bins ? norms[blk * 8 + l] : __builtin_inff();
        kk = _mm256_load_ps(tmp);
      }
      const __m256i idx = _mm256_add_epi32(lane, _mm256_set1_epi32(blk * 8));
      const __m256 two = _mm256_set1_ps(2.0f);
      update(best[0], _mm256_add_ps(_mm256_sub_ps(xx[0], _mm256_mul_ps(two, acc0)), kk), idx);
      update(best[1], _mm256_add_ps(_mm256_sub_ps(xx[1], _mm256_mul_ps(two, acc1)), kk), idx);
      update(best[2], _mm256_add_ps(_mm256_sub_ps(xx[2], _mm256_mul_ps(two, acc2)), kk), idx);
      update(best[3], _mm256_add_ps(_mm256_sub_ps(xx[3], _mm256_mul_ps(two, acc3)), kk), idx);
    }
    for (int r = 0; r < rows; ++r) out[i + r] = reduce(best[r]);
  }
}

}  // namespace jb

#else

namespace jb {
void vq_rows_avx2(const Codebook& cb, const float* x, int r0, int r1, int32_t* out) {
  vq_rows_generic(cb, x, r0, r1, out);
}
}  // namespace jb

#endif
