// Plain CPU references of the CUDA kernels in this folder, one per kernel, written to give
// exactly what the CPU engine's op gives (csrc/cpu/matmul.cc matmul_ref, csrc/model/
// transformer.cc layer_norm / quick_gelu / the residual sums): cuda/test/helpers_test.cc
// checks them against those ops on the CPU in CI, and the device parity test
// (cuda/test/kernels_parity.cu) checks each kernel against them on a GPU.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "../common/half_convert.h"

namespace jb {
namespace gpu_ref {

/** y[m][n] = sum_k x[m][k] W[k][n] + bias[n]; W fp16, stored (K, N), or (N, K) when transposed. */
inline void gemv_f16(const float* x, int M, int K, int N, const uint16_t* w, bool transposed, const float* bias, float* y) {
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double acc = bias ? bias[n] : 0.0;
      for (int k = 0; k < K; ++k) {
        const uint16_t h = transposed ? w[size_t(n) * K + k] : w[size_t(k) * N + n];
        acc += double(x[size_t(m) * K + k]) * gpu::half_to_float_bits(h);
      }
      y[size_t(m) * N + n] = float(acc);
    }
}

/** torch LayerNorm (eps 1e-5, biased variance) as the engine computes it. */
inline void layer_norm(const float* x, int rows, int width, const float* g, const float* b, float* y) {
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + size_t(r) * width;
    float* yr = y + size_t(r) * width;
    double mean = 0;
    for (int i = 0; i < width; ++i) mean += xr[i];
    mean /= width;
    double var = 0;
    for (int i = 0; i < width; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= width;
    const double inv = 1.0 / std::sqrt(var + 1e-5);
    for (int i = 0; i < width; ++i) yr[i] = float((xr[i] - mean) * inv) * g[i] + b[i];
  }
}

/** x = quick_gelu(x + bias) per row (bias may be null): v * sigmoid(1.702 v). */
inline void bias_quick_gelu(float* x, const float* bias, int rows, int width) {
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < width; ++i) {
      float& v = x[size_t(r) * width + i];
      const float u = bias ? v + bias[i] : v;
      v = u * (1.0f / (1.0f + std::exp(-1.702f * u)));
    }
}

/** The block's residual: h = (h + a) + m, or h + s * (a + m) for res_scale s != 1. */
inline void residual(float* h, const float* a, const float* m, size_t n, float res_scale) {
  for (size_t i = 0; i < n; ++i) h[i] = res_scale == 1.0f ? (h[i] + a[i]) + m[i] : h[i] + res_scale * (a[i] + m[i]);
}

}  // namespace gpu_ref
}  // namespace jb
