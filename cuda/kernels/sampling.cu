// Token sampling on the device, with the engine's semantics (csrc/cpu/sampling.cc): logits /
// temperature in float; top-k keeps every logit not below the k-th largest; top-p sorts
// descending (stable), accumulates softmax probabilities and keeps tokens up to and including
// the first that crosses top_p; the kept logits are softmaxed in double and the CDF is
// inverted in index order at the Philox uniform of (seed, stream, sample, position).
// One block per sample. The parallel parts (division, exponentials, the bitonic sort) give
// the same values as the CPU's; the sums that decide the token run on one thread in the
// CPU's order, so a token differs from the CPU's only when the uniform lands within
// rounding of a CDF boundary (double exp may differ by an ulp from glibc's).
#include <math.h>

#include "../common/philox.h"
#include "kernels.h"

namespace jb {
namespace cuda {

namespace {

constexpr int kMaxBins = 2048;
constexpr int kThreads = 1024;

// Sorts (key desc, index asc) pairs of n = power of two <= kMaxBins in shared memory: the
// order of std::stable_sort with greater-than on the keys.
__device__ void bitonic_sort_desc(float* key, int* idx, int n) {
  for (int size = 2; size <= n; size <<= 1)
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      __syncthreads();
      for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const int j = i ^ stride;
        if (j <= i) continue;
        // "a before b" when a's key is larger, or equal with the smaller index
        const bool i_first = key[i] > key[j] || (key[i] == key[j] && idx[i] < idx[j]);
        const bool ascending_block = (i & size) != 0;  // this half sorts the other way
        if (i_first == ascending_block) {
          const float tk = key[i];
          key[i] = key[j];
          key[j] = tk;
          const int ti = idx[i];
          idx[i] = idx[j];
          idx[j] = ti;
        }
      }
    }
  __syncthreads();
}

__global__ void sample_kernel(const float* __restrict__ logits, int bins, Sampling p, uint64_t seed, uint32_t stream_id,
                              uint32_t sample_offset, uint32_t position, int32_t* tokens) {
  __shared__ float x[kMaxBins], skey[kMaxBins];
  __shared__ int sidx[kMaxBins];
  __shared__ double e[kMaxBins];
  __shared__ unsigned char keep[kMaxBins];
  __shared__ float kth;
  __shared__ double mx_all;
  const int b = blockIdx.x;
  const float* lg = logits + size_t(b) * bins;
  int n2 = 1;
  while (n2 < bins) n2 <<= 1;
  for (int i = threadIdx.x; i < n2; i += blockDim.x) {
    if (i < bins) {
      x[i] = lg[i] / p.temperature;
      keep[i] = 1;
      skey[i] = x[i];
    } else {
      skey[i] = -INFINITY;
    }
    sidx[i] = i;
  }
  const int k = p.top_k < bins ? p.top_k : bins;
  if (k > 0 || p.top_p > 0.0f) {
    bitonic_sort_desc(skey, sidx, n2);  // padding (-inf, larger index) sorts last
    if (k > 0) {
      if (threadIdx.x == 0) kth = skey[k - 1];
      __syncthreads();
      for (int i = threadIdx.x; i < bins; i += blockDim.x) keep[i] = !(x[i] < kth);
      __syncthreads();
    }
    if (p.top_p > 0.0f) {
      if (threadIdx.x == 0) mx_all = double(skey[0]);
      __syncthreads();
      for (int i = threadIdx.x; i < bins; i += blockDim.x) e[i] = exp(double(x[i]) - mx_all);
      __syncthreads();
      if (threadIdx.x == 0) {
        double z = 0;
        for (int i = 0; i < bins; ++i) z += e[i];
        double cum = 0;
        bool remove_next = false;
        for (int r = 0; r < bins; ++r) {
          const int i = sidx[r];
          if (remove_next) keep[i] = 0;
          cum += e[i] / z;
          remove_next = cum > double(p.top_p);
        }
      }
      __syncthreads();
    }
  }
  // max over kept logits, exponentials, then the sum and the draw in index order
  if (threadIdx.x == 0) {
    double mx = -INFINITY;
    for (int i = 0; i < bins; ++i)
      if (keep[i]) mx = fmax(mx, double(x[i]));
    mx_all = mx;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < bins; i += blockDim.x) e[i] = keep[i] ? exp(double(x[i]) - mx_all) : 0.0;
  __syncthreads();
  if (threadIdx.x == 0) {
    double sum = 0;
    for (int i = 0; i < bins; ++i)
      if (keep[i]) sum += e[i];
    const double u = gpu::philox_uniform(seed, stream_id, sample_offset + uint32_t(b), position, gpu::kTokenDrawTag);
    double cum = 0;
    int32_t last = 0, token = -1;
    for (int i = 0; i < bins && token < 0; ++i) {
      const double pi = e[i] / sum;
      if (pi <= 0) continue;
      last = i;
      cum += pi;
      if (u < cum) token = i;
    }
    tokens[b] = token >= 0 ? token : last;
  }
}

}  // namespace

cudaError_t sample_tokens(const float* logits, int n, int bins, Sampling p, uint64_t seed, uint32_t stream_id, uint32_t sample_offset,
                          uint32_t position, int32_t* tokens, cudaStream_t stream) {
  if (n < 1 || bins < 1 || bins > kMaxBins || !(p.temperature > 0.0f) || (p.top_k > 0 && p.top_p > 0.0f) || p.top_k < 0) {
    return cudaErrorInvalidValue;
  }
  sample_kernel<<<n, kThreads, 0, stream>>>(logits, bins, p, seed, stream_id, sample_offset, position, tokens);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace jb
