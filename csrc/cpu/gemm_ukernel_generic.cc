// Portable micro-kernel: plain loops over a local accumulator tile. The compiler vectorises
// the inner j loop with whatever the baseline ISA offers (SSE2 on x86-64, NEON on arm64).
#include "cpu_features.h"
#include "gemm_ukernel.h"

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

void pack_row_generic(const float* src, float* dst, bool relu) {
  if (relu) {
    for (int j = 0; j < kNR; ++j) dst[j] = src[j] > 0.0f ? src[j] : 0.0f;
  } else {
    for (int j = 0; j < kNR; ++j) dst[j] = src[j];
  }
}

UKernel active_ukernel() {
  return active_isa() == Isa::Avx2Fma ? ukernel_avx2 : ukernel_generic;
}

PackRow active_pack_row() {
  return active_isa() == Isa::Avx2Fma ? pack_row_avx2 : pack_row_generic;
}

}  // namespace jb
