#include "vec.h"

#include "cpu_features.h"
#include "kernels_avx512.h"

namespace jb {

float dot_generic(const float* a, const float* b, int n) {
  float s = 0.0f;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy_generic(float alpha, const float* x, float* y, int n) {
  for (int i = 0; i < n; ++i) y[i] += alpha * x[i];
}

DotFn active_dot() {
  switch (active_isa()) {
    case Isa::Avx512: return avx512_kernels()->dot;
    case Isa::Avx2Fma: return dot_avx2;
    default: return dot_generic;
  }
}

AxpyFn active_axpy() {
  switch (active_isa()) {
    case Isa::Avx512: return avx512_kernels()->axpy;
    case Isa::Avx2Fma: return axpy_avx2;
    default: return axpy_generic;
  }
}

}  // namespace jb
