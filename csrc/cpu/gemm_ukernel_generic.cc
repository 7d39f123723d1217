// Portable micro-kernel: plain loops over a local accumulator tile. The compiler vectorises
// the inner j loop with whatever the baseline ISA offers (SSE2 on x86-64, NEON on arm64).
#include <cstddef>

#include "cpu_features.h"
#include "gemm_ukernel.h"
#include "kernels_avx512.h"

namespace jb {

void ukernel_generic(int K, const float* a, const float* b, float* c, int ldc, bool accumulate) {
  float acc[kMR][kNR] = {};
  for (int k = 0; k < K; ++k) {
    const float* ak = a + k * kMR;
    const float* bk = b + k * kNR;
    for (int r = 0; r < kMR; ++r) {
      const float av = ak[r];
      for (int j = 0; j < kNR; ++j) acc[r][j] += av * bk[j];
    }
  }
  for (int r = 0; r < kMR; ++r) {
    float* cr = c + r * ldc;
    if (accumulate) {
      for (int j = 0; j < kNR; ++j) cr[j] += acc[r][j];
    } else {
      for (int j = 0; j < kNR; ++j) cr[j] = acc[r][j];
    }
  }
}

void pack_row_generic(const float* src, float* dst, long dst_stride, int n, bool relu) {
  for (int i = 0; i < n; ++i, src += kNR, dst += dst_stride) {
    if (relu) {
      for (int j = 0; j < kNR; ++j) dst[j] = src[j] > 0.0f ? src[j] : 0.0f;
    } else {
      for (int j = 0; j < kNR; ++j) dst[j] = src[j];
    }
  }
}

// The tile loops of the AVX2 and portable kernels: b panels outer (one K x NR panel stays
// in L1 while every a panel streams past it), one micro-kernel call per panel pair.
static inline void tile_loop(UKernel uk, int K, const float* a, int panels_m, const float* b, int panels_n,
                             float* c, int ldc) {
  for (int pn = 0; pn < panels_n; ++pn) {
    const float* bp = b + size_t(pn) * K * kNR;
    for (int pm = 0; pm < panels_m; ++pm)
      uk(K, a + size_t(pm) * K * kMR, bp, c + size_t(pm) * kMR * ldc + pn * kNR, ldc, false);
  }
}

void tile_gemm_generic(int K, const float* a, int panels_m, const float* b, int panels_n, float* c, int ldc) {
  tile_loop(ukernel_generic, K, a, panels_m, b, panels_n, c, ldc);
}

void tile_gemm_avx2(int K, const float* a, int panels_m, const float* b, int panels_n, float* c, int ldc) {
  tile_loop(ukernel_avx2, K, a, panels_m, b, panels_n, c, ldc);
}

UKernel active_ukernel() {
  switch (active_isa()) {
    case Isa::Avx512: return avx512_kernels()->ukernel;
    case Isa::Avx2Fma: return ukernel_avx2;
    default: return ukernel_generic;
  }
}

TileGemm active_tile_gemm() {
  switch (active_isa()) {
    case Isa::Avx512: return avx512_kernels()->tile_gemm;
    case Isa::Avx2Fma: return tile_gemm_avx2;
    default: return tile_gemm_generic;
  }
}

PackRow active_pack_row() {
  switch (active_isa()) {
    case Isa::Avx512: return avx512_kernels()->pack_row;
    case Isa::Avx2Fma: return pack_row_avx2;
    default: return pack_row_generic;
  }
}

}  // namespace jb
