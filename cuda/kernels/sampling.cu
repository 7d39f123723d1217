// Token sampling on the device, with the engine's semantics (csrc/cpu/sampling.cc): logits /
// temperature in float; top-k keeps every logit not below the k-th largest; top-p sorts
// descending (stable), accumulates softmax probabilities and keeps tokens up to and including
// the first that crosses top_p; the kept logits are softmaxed in double and the CDF is
// inverted in index order at the Philox uniform of (seed, stream, sample, position).
// One block per sample. The parallel parts (division, exponentials, the bitonic sort) give
// the same values as the CPU's; the sums that decide the token run on one thread in the
// CPU's order, so a token differs from the CPU's only when the uniform lands within
// rounding of a CDF boundary (double exp may differ by an ulp from glibc's).
//
// Working arrays live in dynamic shared memory sized for the vocabulary (bins <= 4096:
// every official vocabulary, 2048 codes and 1b_lyrics' 79 + 2048 = 2127 tokens): 13 bytes a
// bin, plus 8 per sorted slot when top-k/top-p sort (the power of two >= bins). Above 48 KiB
// (2127 bins with a filter: 59 KiB) the kernel needs the opt-in attribute, set once; 4096 bins
// with a filter (84 KiB) still fit sm_86/89's 99 KiB per block, the smallest of the build.
#include <math.h>

#include <atomic>

#include "../../common/philox.h"
#include "kernels.h"
#include "../common/jb_launch.h"

namespace jb {
namespace cuda {

namespace {

constexpr int kMaxBins = 4096;
constexpr int kThreads = 1024;

int pow2_at_least(int n) {
  int p = 1;
  while (p < n) p <<= 1;
  return p;
}

// Dynamic shared memory of a block: e (double) | x (float) | skey, sidx (sorting only) | keep.
size_t sample_smem_bytes(int bins, bool sort) {
  const size_t n2 = size_t(pow2_at_least(bins));
  return size_t(bins) * (sizeof(double) + sizeof(float)) + (sort ? n2 * (sizeof(float) + sizeof(int)) : 0) + size_t(bins);
}

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
                              uint32_t sample_offset, uint32_t position, const int32_t* position_dev, int32_t* tokens) {
  JB_DYNAMIC_SHARED(unsigned char, smem);
  const int k = p.top_k < bins ? p.top_k : bins;
  const bool sort = k > 0 || p.top_p > 0.0f;
  int n2 = 1;
  while (n2 < bins) n2 <<= 1;
  double* e = reinterpret_cast<double*>(smem);
  float* x = reinterpret_cast<float*>(e + bins);
  float* skey = x + bins;
  int* sidx = reinterpret_cast<int*>(skey + (sort ? n2 : 0));
  unsigned char* keep = reinterpret_cast<unsigned char*>(sidx + (sort ? n2 : 0));
  __shared__ float kth;
  __shared__ double mx_all;
  const int b = blockIdx.x;
  const float* lg = logits + size_t(b) * bins;
  for (int i = threadIdx.x; i < n2; i += blockDim.x) {
    if (i < bins) {
      x[i] = lg[i] / p.temperature;
      keep[i] = 1;
    }
    if (sort) {
      skey[i] = i < bins ? x[i] : -INFINITY;
      sidx[i] = i;
    }
  }
  // Every thread's x and keep before anyone reads them (plain temperature sampling reads
  // them on thread 0 below with no other barrier in between).
  __syncthreads();
  if (sort) {
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
    const uint32_t pos = position_dev ? uint32_t(*position_dev) : position;
    const double u = gpu::philox_uniform(seed, stream_id, sample_offset + uint32_t(b), pos, gpu::kTokenDrawTag);
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
                          uint32_t position, int32_t* tokens, cudaStream_t stream, const int32_t* position_dev) {
  if (n < 1 || bins < 1 || bins > kMaxBins || !(p.temperature > 0.0f) || (p.top_k > 0 && p.top_p > 0.0f) || p.top_k < 0) {
    return cudaErrorInvalidValue;
  }
  const bool sort = (p.top_k > 0) || p.top_p > 0.0f;
  const size_t smem = sample_smem_bytes(bins, sort);
  if (smem > 48 * 1024) {
    // Above 48 KiB a kernel must opt in, per device: once, for the largest block it can ask for.
    static std::atomic<uint64_t> opted_in{0};
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess) return e;
    const uint64_t bit = uint64_t(1) << (dev & 63);
    if (!(opted_in.load() & bit)) {
      e = cudaFuncSetAttribute(sample_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(sample_smem_bytes(kMaxBins, true)));
      if (e != cudaSuccess) return e;
      opted_in.fetch_or(bit);
    }
  }
  JB_LAUNCH(sample_kernel, n, kThreads, smem, stream)(logits, bins, p, seed, stream_id, sample_offset, position, position_dev, tokens);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace jb
