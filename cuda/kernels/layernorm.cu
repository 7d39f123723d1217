// Fused LayerNorm (torch's, eps 1e-5, biased variance): one block per row, mean and then
// variance of the deviations (two passes over the row held in registers/L1), so the result
// stays within fp32 rounding of the engine's double-precision reference (ops_ref.h).
#include "kernels.h"
#include "../common/jb_launch.h"

namespace jb {
namespace cuda {

namespace {

constexpr int kThreads = 256;

__device__ float block_sum(float v, float* shared) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();  // shared may still be read from the previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float s = 0.0f;
  if (threadIdx.x < 32) {
    s = threadIdx.x < blockDim.x / 32 ? shared[threadIdx.x] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
    if (threadIdx.x == 0) shared[0] = s;
  }
  __syncthreads();
  return shared[0];
}

// x and y may be the same rows (the layer chain normalises in place: decode_layer.cu), so
// neither is __restrict__: a restrict-qualified x would let the compiler keep x's values (or
// reorder its loads) across the writes through y that alias it.
__global__ void layer_norm_kernel(const float* x, int width, const float* __restrict__ g, const float* __restrict__ b, float* y) {
  __shared__ float shared[32];
  const float* xr = x + size_t(blockIdx.x) * width;
  float* yr = y + size_t(blockIdx.x) * width;
  float s = 0.0f;
  for (int i = threadIdx.x; i < width; i += blockDim.x) s += xr[i];
  const float mean = block_sum(s, shared) / float(width);
  float v = 0.0f;
  for (int i = threadIdx.x; i < width; i += blockDim.x) {
    const float d = xr[i] - mean;
    v = fmaf(d, d, v);
  }
  const float inv = rsqrtf(block_sum(v, shared) / float(width) + 1e-5f);
  // every thread has read its values of the row before any writes (y may be x)
  __syncthreads();
  for (int i = threadIdx.x; i < width; i += blockDim.x) yr[i] = (xr[i] - mean) * inv * g[i] + b[i];
}

// y = LayerNorm(h + a): the decode step's add before ln_1 fused into the norm (one launch
// instead of two; the sum is rounded once, as add_kernel rounds it, and read twice).
__global__ void add_layer_norm_kernel(const float* __restrict__ h, const float* __restrict__ a, int width, const float* __restrict__ g,
                                      const float* __restrict__ b, float* __restrict__ y) {
  __shared__ float shared[32];
  const float* hr = h + size_t(blockIdx.x) * width;
  const float* ar = a + size_t(blockIdx.x) * width;
  float* yr = y + size_t(blockIdx.x) * width;
  float s = 0.0f;
  for (int i = threadIdx.x; i < width; i += blockDim.x) s += __fadd_rn(hr[i], ar[i]);
  const float mean = block_sum(s, shared) / float(width);
  float v = 0.0f;
  for (int i = threadIdx.x; i < width; i += blockDim.x) {
    const float d = __fadd_rn(hr[i], ar[i]) - mean;
    v = fmaf(d, d, v);
  }
  const float inv = rsqrtf(block_sum(v, shared) / float(width) + 1e-5f);
  for (int i = threadIdx.x; i < width; i += blockDim.x) yr[i] = (__fadd_rn(hr[i], ar[i]) - mean) * inv * g[i] + b[i];
}

}  // namespace

cudaError_t add_layer_norm(const float* h, const float* a, int rows, int width, const float* g, const float* b, float* y,
                           cudaStream_t stream) {
  if (rows < 1 || width < 1) return cudaErrorInvalidValue;
  JB_LAUNCH(add_layer_norm_kernel, rows, kThreads, 0, stream)(h, a, width, g, b, y);
  return cudaGetLastError();
}

cudaError_t layer_norm(const float* x, int rows, int width, const float* g, const float* b, float* y, cudaStream_t stream) {
  if (rows < 1 || width < 1) return cudaErrorInvalidValue;
  JB_LAUNCH(layer_norm_kernel, rows, kThreads, 0, stream)(x, width, g, b, y);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace jb
