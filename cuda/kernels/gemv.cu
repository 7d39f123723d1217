// GEMV / skinny GEMM over fp16 weights with fp32 accumulation: the decode step's matrix
// products (qkv, attention out, MLP, logits) at batch 1..16, bound by how fast the weights
// stream from memory. Two layouts:
//  - (K, N) (Conv1D): each thread owns two adjacent outputs and reads one half2 per k, so a
//    warp reads 128 contiguous bytes of a weight row; x is staged in shared memory. The K
//    axis is split across blocks (common/gemv_plan.h) into a workspace and the partials are
//    summed in a fixed order by a second kernel: deterministic.
//  - (N, K) (transposed): a warp per output, lanes striding along the row, a shuffle sum.
// Reference: ops_ref.h gemv_f16 (= csrc/cpu/matmul.cc matmul_ref with fp16 weights).
#include "../common/gemv_plan.h"
#include "kernels.h"
#include "../common/jb_launch.h"

namespace jb {
namespace cuda {

namespace {

constexpr int kStageK = 128;  // k values of x staged in shared memory at a time

// partial[s][m][n] (or y with the bias when split_k == 1)
__global__ void gemv_kn_kernel(const float* __restrict__ x, int M, int K, int N, const __half* __restrict__ w,
                               const float* __restrict__ bias, float* __restrict__ out, int k_per_split, bool to_workspace) {
  __shared__ float xs[gpu::kGemvMaxRows][kStageK];
  const int n0 = (blockIdx.x * blockDim.x + threadIdx.x) * gpu::kGemvColsPerThread;
  const int k_begin = blockIdx.y * k_per_split;
  const int k_end = min(K, k_begin + k_per_split);
  float acc[gpu::kGemvMaxRows][2];
#pragma unroll
  for (int m = 0; m < gpu::kGemvMaxRows; ++m) acc[m][0] = acc[m][1] = 0.0f;
  const bool pair = n0 + 1 < N && (N % 2 == 0);  // half2 loads need 4-byte alignment
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
      const __half* row = w + size_t(k0 + kk) * N + n0;
      float w0, w1 = 0.0f;
      if (pair) {
        const float2 f = __half22float2(*reinterpret_cast<const __half2*>(row));
        w0 = f.x;
        w1 = f.y;
      } else {
        w0 = __half2float(row[0]);
        if (n0 + 1 < N) w1 = __half2float(row[1]);
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
      const float b = (!to_workspace && bias) ? bias[n0 + c] : 0.0f;
      dst[size_t(m) * N + n0 + c] = acc[m][c] + b;
    }
  }
}

// y[m][n] = bias[n] + sum over splits in order
__global__ void gemv_reduce_kernel(const float* __restrict__ partial, int splits, int MN, int N, const float* __restrict__ bias,
                                   float* __restrict__ y) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= MN) return;
  float s = 0.0f;
  for (int p = 0; p < splits; ++p) s += partial[size_t(p) * MN + i];
  y[i] = s + (bias ? bias[i % N] : 0.0f);
}

// One warp per output n of a (N, K) weight.
__global__ void gemv_nk_kernel(const float* __restrict__ x, int M, int K, int N, const __half* __restrict__ w,
                               const float* __restrict__ bias, float* __restrict__ y) {
  const int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= N) return;
  const __half* row = w + size_t(warp) * K;
  float acc[gpu::kGemvMaxRows];
#pragma unroll
  for (int m = 0; m < gpu::kGemvMaxRows; ++m) acc[m] = 0.0f;
  for (int k = lane; k < K; k += 32) {
    const float wk = __half2float(row[k]);
#pragma unroll
    for (int m = 0; m < gpu::kGemvMaxRows; ++m)
      if (m < M) acc[m] = fmaf(x[size_t(m) * K + k], wk, acc[m]);
  }
#pragma unroll
  for (int m = 0; m < gpu::kGemvMaxRows; ++m) {
    if (m >= M) break;
    float v = acc[m];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if (lane == 0) y[size_t(m) * N + warp] = v + (bias ? bias[warp] : 0.0f);
  }
}

}  // namespace

size_t gemv_workspace_floats(int M, int K, int N, int blocks_wanted) {
  const gpu::GemvPlan p = gpu::gemv_plan(K, N, blocks_wanted);
  return p.split_k > 1 ? size_t(p.split_k) * M * N : 0;
}

cudaError_t gemv_f16(const float* x, int M, int K, int N, const __half* w, bool transposed, const float* bias, float* y,
                     float* work, int blocks_wanted, cudaStream_t stream) {
  if (M < 1 || M > gpu::kGemvMaxRows || K < 1 || N < 1) return cudaErrorInvalidValue;
  if (transposed) {
    const int threads = 256;
    const int blocks = gpu::ceil_div(N * 32, threads);
    JB_LAUNCH(gemv_nk_kernel, blocks, threads, 0, stream)(x, M, K, N, w, bias, y);
    return cudaGetLastError();
  }
  const gpu::GemvPlan p = gpu::gemv_plan(K, N, blocks_wanted);
  if (p.split_k > 1 && !work) return cudaErrorInvalidValue;
  const dim3 grid(p.col_blocks, p.split_k);
  JB_LAUNCH(gemv_kn_kernel, grid, gpu::kGemvThreads, 0, stream)(x, M, K, N, w, bias, p.split_k > 1 ? work : y, p.k_per_split, p.split_k > 1);
  if (p.split_k > 1) {
    const int mn = M * N;
    JB_LAUNCH(gemv_reduce_kernel, gpu::ceil_div(mn, 256), 256, 0, stream)(work, p.split_k, mn, N, bias, y);
  }
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace jb
