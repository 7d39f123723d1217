// Scalar references for conv1d and conv_transpose1d, written straight from PyTorch's
// definitions (double accumulation so they serve as ground truth for the fast kernels).
#include "conv1d.h"

#include <cstdint>

namespace jb {

void conv1d_ref(const ConvParams& p, const float* x, int n, int tin, const float* w,
                const float* bias, float* y) {
  const int tout = p.out_len(tin);
  for (int b = 0; b < n; ++b)
    for (int co = 0; co < p.cout; ++co)
      for (int t = 0; t < tout; ++t) {
        double acc = bias ? bias[co] : 0.0;
        for (int ci = 0; ci < p.cin; ++ci)
          for (int k = 0; k < p.kernel; ++k) {
            // 64-bit: k * dilation alone overflows an int for dilations near 2^30.
            const int64_t s = int64_t(t) * p.stride + int64_t(k) * p.dilation - p.pad;
            if (s < 0 || s >= tin) continue;
            acc += double(w[(size_t(co) * p.cin + ci) * p.kernel + k]) *
                   x[(size_t(b) * p.cin + ci) * tin + s];
          }
        y[(size_t(b) * p.cout + co) * tout + t] = float(acc);
      }
}

void conv_transpose1d_ref(const ConvParams& p, const float* x, int n, int tin, const float* w,
                          const float* bias, float* y) {
  const int tout = p.out_len(tin);
  for (int b = 0; b < n; ++b)
    for (int co = 0; co < p.cout; ++co)
      for (int t = 0; t < tout; ++t) {
        double acc = bias ? bias[co] : 0.0;
        // y[t] gathers x[s] for every s, k with s*stride - pad + k*dil == t.
        for (int ci = 0; ci < p.cin; ++ci)
          for (int k = 0; k < p.kernel; ++k) {
            const int64_t num = int64_t(t) + p.pad - int64_t(k) * p.dilation;
            if (num < 0 || num % p.stride != 0) continue;
            const int64_t s = num / p.stride;
            if (s >= tin) continue;
            acc += double(w[(size_t(ci) * p.cout + co) * p.kernel + k]) *
                   x[(size_t(b) * p.cin + ci) * tin + s];
          }
        y[(size_t(b) * p.cout + co) * tout + t] = float(acc);
      }
}

}  // namespace jb
