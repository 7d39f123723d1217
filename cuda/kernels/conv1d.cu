// The VQ-VAE decoder's convolutions on the device: Conv1d and ConvTranspose1d with
// PyTorch's definitions (dilation, padding, stride), a ReLU on the input and the residual
// accumulate fused, and the codebook lookup that turns codes into the decoder's input.
// Direct convolution: a thread per (output position, group of kChans output channels),
// reading x along time (coalesced across the warp) and weights as warp-uniform broadcasts.
// The implicit-GEMM tensor-core version replaces it behind the same launcher.
// Reference: the engine's conv1d_ref / conv_transpose1d_ref (csrc/cpu/conv1d_ref.cc).
#include "kernels.h"
#include "../common/jb_launch.h"

namespace jb {
namespace cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kChans = 8;

__global__ void conv1d_kernel(ConvShape c, const float* __restrict__ x, int tin, int tout, const float* __restrict__ w,
                              const float* __restrict__ bias, float* y, bool relu_input, bool accumulate, float scale) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  const int co0 = blockIdx.y * kChans;
  const int b = blockIdx.z;
  if (t >= tout) return;
  float acc[kChans];  // fp32 accumulation (the reference's double differs by rounding only)
#pragma unroll
  for (int j = 0; j < kChans; ++j) acc[j] = (bias && co0 + j < c.cout) ? bias[co0 + j] : 0.0f;
  const float* xb = x + size_t(b) * c.cin * tin;
  for (int ci = 0; ci < c.cin; ++ci) {
    for (int k = 0; k < c.kernel; ++k) {
      int s;
      if (!c.transposed) {
        s = t * c.stride + k * c.dilation - c.pad;
        if (s < 0 || s >= tin) continue;
      } else {
        const int num = t + c.pad - k * c.dilation;
        if (num < 0 || num % c.stride != 0) continue;
        s = num / c.stride;
        if (s >= tin) continue;
      }
      float xv = xb[size_t(ci) * tin + s];
      if (relu_input) xv = fmaxf(xv, 0.0f);
#pragma unroll
      for (int j = 0; j < kChans; ++j) {
        const int co = co0 + j;
        if (co >= c.cout) break;
        const float wv = c.transposed ? w[(size_t(ci) * c.cout + co) * c.kernel + k] : w[(size_t(co) * c.cin + ci) * c.kernel + k];
        acc[j] = fmaf(wv, xv, acc[j]);
      }
    }
  }
#pragma unroll
  for (int j = 0; j < kChans; ++j) {
    const int co = co0 + j;
    if (co >= c.cout) break;
    float* out = y + (size_t(b) * c.cout + co) * tout + t;
    *out = accumulate ? __fadd_rn(*out, __fmul_rn(scale, acc[j])) : acc[j];
  }
}

__global__ void dequantize_kernel(const int32_t* __restrict__ codes, int t, const float* __restrict__ codebook, int bins, int width,
                                  float* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;  // time
  const int b = blockIdx.z;
  if (i >= t) return;
  int code = codes[size_t(b) * t + i];
  code = code < 0 ? 0 : (code >= bins ? bins - 1 : code);  // the launcher's caller validates codes
  for (int c = blockIdx.y; c < width; c += gridDim.y) out[(size_t(b) * width + c) * t + i] = codebook[size_t(code) * width + c];
}

}  // namespace

int conv_out_len(const ConvShape& c, int tin) {
  if (c.transposed) return (tin - 1) * c.stride - 2 * c.pad + c.dilation * (c.kernel - 1) + 1;
  return (tin + 2 * c.pad - c.dilation * (c.kernel - 1) - 1) / c.stride + 1;
}

cudaError_t conv1d(const ConvShape& c, const float* x, int n, int tin, const float* w, const float* bias, float* y, bool relu_input,
                   bool accumulate, float scale, cudaStream_t stream) {
  if (n < 1 || tin < 1 || c.cin < 1 || c.cout < 1 || c.kernel < 1 || c.stride < 1 || c.dilation < 1 || c.pad < 0) return cudaErrorInvalidValue;
  const int tout = conv_out_len(c, tin);
  if (tout < 1) return cudaErrorInvalidValue;
  const dim3 grid((tout + kThreads - 1) / kThreads, (c.cout + kChans - 1) / kChans, n);
  JB_LAUNCH(conv1d_kernel, grid, kThreads, 0, stream)(c, x, tin, tout, w, bias, y, relu_input, accumulate, scale);
  return cudaGetLastError();
}

cudaError_t dequantize(const int32_t* codes, int n, int t, const float* codebook, int bins, int width, float* out, cudaStream_t stream) {
  if (n < 1 || t < 1 || bins < 1 || width < 1) return cudaErrorInvalidValue;
  const dim3 grid((t + 127) / 128, width < 16 ? width : 16, n);
  JB_LAUNCH(dequantize_kernel, grid, 128, 0, stream)(codes, t, codebook, bins, width, out);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace jb
