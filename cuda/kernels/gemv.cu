// GEMV / skinny GEMM with fp32 accumulation over weights of any of the model's dtypes (fp16,
// fp32, bf16: wtype.cuh): the decode step's matrix products (qkv, attention out, MLP,
// logits) at batch 1..16, bound by how fast the weights stream from memory. Two layouts:
//  - (K, N) (Conv1D): each thread owns two adjacent outputs and reads one pair per k (a
//    half2 / float2 / bf16 pair), so a warp reads 128 (fp16) or 256 (fp32) contiguous bytes
//    of a weight row; x is staged in shared memory. The K axis is split across blocks
//    (common/gemv_plan.h) into a workspace and the partials are summed in a fixed order by a
//    second kernel: deterministic.
//  - (N, K) (transposed): a warp per output, lanes striding along the row, a shuffle sum.
// Bytes and FLOPs: every weight is read once per call (K*N*sizeof(T)) for 2*M*K*N FLOPs, so
// at M <= 16 the kernel is bandwidth bound; the split-K partials (split*M*N floats) are tiny
// next to the weights. Optional epilogue: quick-GELU after the bias (the MLP's first
// product), which saves the decode step a launch per layer.
// Reference: ops_ref.h gemv_f16 / gemv_any (= csrc/cpu/matmul.cc matmul_ref).
#include "../common/gemv_plan.h"
#include "kernels.h"
#include "wtype.cuh"
#include "../common/jb_launch.h"

namespace jb {
namespace cuda {

namespace {

constexpr int kStageK = 128;  // k values of x staged in shared memory at a time

__device__ __forceinline__ float epilogue(float v, int act) { return act ? quick_gelu(v) : v; }

// partial[s][m][n] (or y with the bias when split_k == 1)
template <typename T>
__global__ void gemv_kn_kernel(const float* __restrict__ x, int M, int K, int N, const T* __restrict__ w, const float* __restrict__ bias,
                               float* __restrict__ out, int k_per_split, bool to_workspace, int act) {
  __shared__ float xs[gpu::kGemvMaxRows][kStageK];
  const int n0 = (blockIdx.x * blockDim.x + threadIdx.x) * gpu::kGemvColsPerThread;
  const int k_begin = blockIdx.y * k_per_split;
  const int k_end = min(K, k_begin + k_per_split);
  float acc[gpu::kGemvMaxRows][2];
#pragma unroll
  for (int m = 0; m < gpu::kGemvMaxRows; ++m) acc[m][0] = acc[m][1] = 0.0f;
  const bool pair = n0 + 1 < N && (N % 2 == 0);  // pair loads need the pair's alignment
  for (int k0 = k_begin; k0 < k_end; k0 += kStageK) {
    const int kc = min(kStageK, k_end - k0);
    __syncthreads();
    for (int i = threadIdx.x; i < M * kStageK; i += blockDim.x) {
      const int m = i / kStageK, kk = i % kStageK;
      xs[m][kk] = kk < kc ? x[size_t(m) * K + k0 + kk] : 0.0f;
    }
    __syncthreads();
    if (n0 >= N) continue;
    for (int kk = 0; kk < kc; ++kk) {
      const T* row = w + size_t(k0 + kk) * N + n0;
      float w0, w1 = 0.0f;
      if (pair) {
        const float2 f = wload2(row);
        w0 = f.x;
        w1 = f.y;
      } else {
        w0 = wload(row, 0);
        if (n0 + 1 < N) w1 = wload(row, 1);
      }
#pragma unroll
      for (int m = 0; m < gpu::kGemvMaxRows; ++m) {
        if (m < M) {
          acc[m][0] = fmaf(xs[m][kk], w0, acc[m][0]);
          acc[m][1] = fmaf(xs[m][kk], w1, acc[m][1]);
        }
      }
    }
  }
  if (n0 >= N) return;
  float* dst = to_workspace ? out + size_t(blockIdx.y) * M * N : out;
#pragma unroll
  for (int m = 0; m < gpu::kGemvMaxRows; ++m) {
    if (m >= M) break;
    for (int c = 0; c < 2 && n0 + c < N; ++c) {
      if (to_workspace) {
        dst[size_t(m) * N + n0 + c] = acc[m][c];
      } else {
        dst[size_t(m) * N + n0 + c] = epilogue(acc[m][c] + (bias ? bias[n0 + c] : 0.0f), act);
      }
    }
  }
}

// y[m][n] = act(bias[n] + sum over splits in order)
__global__ void gemv_reduce_kernel(const float* __restrict__ partial, int splits, int MN, int N, const float* __restrict__ bias,
                                   float* __restrict__ y, int act) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= MN) return;
  float s = 0.0f;
  for (int p = 0; p < splits; ++p) s += partial[size_t(p) * MN + i];
  y[i] = epilogue(s + (bias ? bias[i % N] : 0.0f), act);
}

// One warp per output n of a (N, K) weight.
template <typename T>
__global__ void gemv_nk_kernel(const float* __restrict__ x, int M, int K, int N, const T* __restrict__ w, const float* __restrict__ bias,
                               float* __restrict__ y, int act) {
  const int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= N) return;
  const T* row = w + size_t(warp) * K;
  float acc[gpu::kGemvMaxRows];
#pragma unroll
  for (int m = 0; m < gpu::kGemvMaxRows; ++m) acc[m] = 0.0f;
  for (int k = lane; k < K; k += 32) {
    const float wk = wload(row, k);
#pragma unroll
    for (int m = 0; m < gpu::kGemvMaxRows; ++m)
      if (m < M) acc[m] = fmaf(x[size_t(m) * K + k], wk, acc[m]);
  }
#pragma unroll
  for (int m = 0; m < gpu::kGemvMaxRows; ++m) {
    if (m >= M) break;
    float v = acc[m];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if (lane == 0) y[size_t(m) * N + warp] = epilogue(v + (bias ? bias[warp] : 0.0f), act);
  }
}

template <typename T>
cudaError_t gemv_t(const float* x, int M, int K, int N, const T* w, bool transposed, const float* bias, float* y, float* work,
                   int blocks_wanted, int act, cudaStream_t stream) {
  if (M < 1 || M > gpu::kGemvMaxRows || K < 1 || N < 1) return cudaErrorInvalidValue;
  if (transposed) {
    const int threads = 256;
    const int blocks = gpu::ceil_div(N * 32, threads);
    JB_LAUNCH(gemv_nk_kernel<T>, blocks, threads, 0, stream)(x, M, K, N, w, bias, y, act);
    return cudaGetLastError();
  }
  const gpu::GemvPlan p = gpu::gemv_plan(K, N, blocks_wanted);
  if (p.split_k > 1 && !work) return cudaErrorInvalidValue;
  const dim3 grid(p.col_blocks, p.split_k);
  JB_LAUNCH(gemv_kn_kernel<T>, grid, gpu::kGemvThreads, 0, stream)(x, M, K, N, w, bias, p.split_k > 1 ? work : y, p.k_per_split,
                                                                    p.split_k > 1, act);
  if (p.split_k > 1) {
    const int mn = M * N;
    JB_LAUNCH(gemv_reduce_kernel, gpu::ceil_div(mn, 256), 256, 0, stream)(work, p.split_k, mn, N, bias, y, act);
  }
  return cudaGetLastError();
}

}  // namespace

size_t gemv_workspace_floats(int M, int K, int N, int blocks_wanted) {
  const gpu::GemvPlan p = gpu::gemv_plan(K, N, blocks_wanted);
  return p.split_k > 1 ? size_t(p.split_k) * M * N : 0;
}

cudaError_t gemv_f16(const float* x, int M, int K, int N, const __half* w, bool transposed, const float* bias, float* y,
                     float* work, int blocks_wanted, cudaStream_t stream) {
  return gemv_t<__half>(x, M, K, N, w, transposed, bias, y, work, blocks_wanted, 0, stream);
}

cudaError_t gemv(const float* x, int M, int K, int N, const void* w, int dtype, bool transposed, const float* bias, float* y, float* work,
                 int blocks_wanted, bool gelu, cudaStream_t stream) {
  const int act = gelu ? 1 : 0;
  switch (dtype) {
    case kWF32: return gemv_t(x, M, K, N, static_cast<const float*>(w), transposed, bias, y, work, blocks_wanted, act, stream);
    case kWF16: return gemv_t(x, M, K, N, static_cast<const __half*>(w), transposed, bias, y, work, blocks_wanted, act, stream);
    case kWBF16: return gemv_t(x, M, K, N, static_cast<const bf16_t*>(w), transposed, bias, y, work, blocks_wanted, act, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace cuda
}  // namespace jb
