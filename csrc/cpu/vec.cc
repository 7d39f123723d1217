#include "vec.h"

#include "cpu_features.h"

namespace jb {

float dot_generic(const float* a, const float* b, int n) {
  float s = 0.0f;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy_generic(float alpha, const float* x, float* y, int n) {
  for (int i = 0; i < n; ++i) y[i] += alpha * x[i];
}

DotFn active_dot() { return active_isa() == Isa::Avx2Fma ? dot_avx2 : dot_generic; }
AxpyFn active_axpy() { return active_isa() == Isa::Avx2Fma ? axpy_avx2 : axpy_generic; }

}  // namespace jb
