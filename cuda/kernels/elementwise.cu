// The decode step's elementwise ops: bias + quick-GELU after the MLP's first product, the
// sum that feeds ln_1, the block's residual sum in the original's order of additions
// (ops_ref.h), and the step's position counter in device memory.
#include "kernels.h"
#include "../common/jb_launch.h"

namespace jb {
namespace cuda {

namespace {

__global__ void bias_quick_gelu_kernel(float* x, const float* __restrict__ bias, size_t n, int width) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float u = bias ? x[i] + bias[i % width] : x[i];
  // expf, not __expf: the engine's std::exp within an ulp or two, not the fast approximation
  x[i] = u * (1.0f / (1.0f + expf(-1.702f * u)));
}

__global__ void residual_kernel(float* h, const float* __restrict__ a, const float* __restrict__ m, size_t n, float res_scale) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  h[i] = res_scale == 1.0f ? __fadd_rn(__fadd_rn(h[i], a[i]), m[i]) : __fadd_rn(h[i], __fmul_rn(res_scale, __fadd_rn(a[i], m[i])));
}

__global__ void add_kernel(float* out, const float* a, const float* b, size_t n) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __fadd_rn(a[i], b[i]);
}

__global__ void advance_position_kernel(int32_t* pos) {
  if (threadIdx.x == 0) *pos += 1;
}

}  // namespace

cudaError_t advance_position(int32_t* pos, cudaStream_t stream) {
  if (!pos) return cudaErrorInvalidValue;
  JB_LAUNCH(advance_position_kernel, 1, 32, 0, stream)(pos);
  return cudaGetLastError();
}

cudaError_t add(float* out, const float* a, const float* b, size_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  JB_LAUNCH(add_kernel, unsigned((n + 255) / 256), 256, 0, stream)(out, a, b, n);
  return cudaGetLastError();
}

cudaError_t bias_quick_gelu(float* x, const float* bias, int rows, int width, cudaStream_t stream) {
  if (rows < 1 || width < 1) return cudaErrorInvalidValue;
  const size_t n = size_t(rows) * width;
  JB_LAUNCH(bias_quick_gelu_kernel, unsigned((n + 255) / 256), 256, 0, stream)(x, bias, n, width);
  return cudaGetLastError();
}

cudaError_t residual(float* h, const float* a, const float* m, size_t n, float res_scale, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  JB_LAUNCH(residual_kernel, unsigned((n + 255) / 256), 256, 0, stream)(h, a, m, n, res_scale);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace jb
