// Tensor-core (wmma) variant of the prefill GEMM (gemm.cu), OPT-IN: src/prior_model.cu uses it
// for the prefill's products only when JUKEBOX_CUDA_PREFILL=tensor (cuda/README.md). The
// default stays the fp32 SIMT GEMM, whose results are within ~1e-6 of the CPU engine's.
//
// y (M x N) = x (M x K) . W + bias [, quick-GELU], the same interface, layouts and weight
// dtypes as gemm(): W stored (K, N) or (N, K) (transposed) in fp32, fp16 or bf16. Inputs are
// fp16: the fp32 activations are rounded to fp16 (nearest even) as they are staged into shared
// memory, fp16 weights are staged as stored, fp32 / bf16 weights are rounded to fp16 in the
// tile (bf16 -> fp16 is exact for |w| in [2^-14, 65504]; smaller values lose bits as fp16
// subnormals, larger ones overflow: no official checkpoint has such weights). Products are
// accumulated in fp32 by the tensor cores (m16n16k16 fragments), and the bias is added in
// fp32 after the last K step, then the optional GELU. The rounding of the inputs changes each
// output by up to 2 x 2^-11 of sum_k |x w| (typically ~1e-4..1e-3 of |y|), so logits move by
// ~1e-3 and sampled tokens no longer equal the CPU engine's: hence not the default.
//
// Tiling: a block of 128 threads (4 warps) computes a 64 x 64 tile of y, each warp a 32 x 32
// quarter as 2 x 2 accumulator fragments, walking K in steps of 32 (two k16 mma steps) with
// an x tile (64 x 32 halves, row-major, rows padded to 40 halves = 80 bytes) and a W tile
// (32 x 64 halves row-major for (K, N), padded to 72; 64 x 32 column-major for (N, K), padded
// to 40) in shared memory. The padding keeps every fragment pointer 32-byte aligned (wmma's
// rule) and moves consecutive fragment rows to other banks. M, N, K that are not multiples of
// 16 (or of the tile) are handled by zero-filled tile elements: a zero contributes exactly 0
// to the fp32 sums, so the padded product equals the unpadded one. The accumulators go
// through shared memory (64 x 68 floats) so the epilogue can add the bias, apply the GELU
// and write only the in-range elements, coalesced along N. Shared memory: 5 KiB (x) + 5 KiB
// (W) + 17 KiB (C) = 27 KiB static per block. ptxas (CUDA 13): 81-85 registers on sm_80,
// 64-69 on sm_90, no spills (occupancy: ~8 blocks = 32 warps per SM by shared memory).
//
// Bytes and FLOPs per block and K step: 64 x 32 x 4 = 8 KiB of x (fp32 in global memory)
// and 32 x 64 x sizeof(T) = 4 KiB (fp16/bf16) or 8 KiB (fp32) of W, mostly from L2 (x is
// reread by each of the N/64 column blocks, W by each of the M/64 row blocks), for
// 2 x 64 x 64 x 32 = 262k FLOPs: ~21 FLOPs per byte with 16-bit weights, 16 with fp32. That is
// the same intensity as gemm.cu's 64 x 64 tile, but the arithmetic now runs at the tensor
// cores' rate (A100: 312 TFLOP/s fp16 dense vs 19.5 TFLOP/s fp32 SIMT), so this tile is L2
// bound, not compute bound: at a few TB/s of L2 bandwidth it can reach on the order of
// 50-150 TFLOP/s, several times the SIMT kernel's ceiling, not the tensor cores' peak. Larger
// tiles (128 x 128: ~42 FLOPs per byte), 16-byte vector loads, fp16 activations kept in
// global memory (half the x bytes) and cp.async double buffering are the next steps; none has
// been measured (no GPU has run this kernel yet).
//
// Arithmetic order: the tensor cores' addition order (and, on current GPUs, their truncating
// alignment of products) is unspecified, so results may differ from the reference's exact sum
// by a few fp32 ulps of sum_k |x^ w^| per addition (the parity tolerance); each output still
// depends only on its row of x and its column of W (no split-K, no atomics: two runs give the
// same bits).
// Reference: ops_ref.h gemm_f16_inputs (the fp16-rounded-inputs product, exact sums).
#include <mma.h>

#include <type_traits>

#include "kernels.h"
#include "wtype.cuh"
#include "../common/jb_launch.h"

namespace jb {
namespace cuda {

namespace {

constexpr int kBM = 64, kBN = 64, kBK = 32, kThreads = 128;
constexpr int kLdX = kBK + 8;   // x tile row (halves): 80 bytes
constexpr int kLdW = kBN + 8;   // (K, N) W tile row (halves): 144 bytes
constexpr int kLdWt = kBK + 8;  // (N, K) W tile column (halves): 80 bytes
constexpr int kLdC = kBN + 4;   // accumulator tile row (floats): 272 bytes
constexpr int kWTile = (kBN * kLdWt > kBK * kLdW) ? kBN * kLdWt : kBK * kLdW;

/** Weight element i as fp16 (round to nearest even from fp32; bf16 through its exact fp32). */
__device__ __forceinline__ __half to_half(const float* p, size_t i) { return __float2half_rn(p[i]); }
__device__ __forceinline__ __half to_half(const __half* p, size_t i) { return p[i]; }
__device__ __forceinline__ __half to_half(const bf16_t* p, size_t i) { return __float2half_rn(wload(p, i)); }

template <typename T, bool kTrans>
__global__ void __launch_bounds__(kThreads) gemm_wmma_kernel(const float* __restrict__ x, int M, int K, int N, int ldx, const T* __restrict__ w,
                                                             const float* __restrict__ bias, float* __restrict__ y, int ldy, int act) {
  namespace wmma = nvcuda::wmma;
  using BLayout = typename std::conditional<kTrans, wmma::col_major, wmma::row_major>::type;
  __shared__ __align__(32) __half xs[kBM * kLdX];
  __shared__ __align__(32) __half ws[kWTile];
  __shared__ __align__(32) float cs[kBM * kLdC];
  const int warp = threadIdx.x / 32;
  const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;  // the warp's quarter of the tile
  const int m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN;
  const __half zero = __float2half_rn(0.0f);
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  for (int k0 = 0; k0 < K; k0 += kBK) {
    __syncthreads();  // the previous step's tiles are consumed
    // x tile, rounded to fp16: consecutive threads read consecutive k of a row (128-byte runs)
    for (int i = threadIdx.x; i < kBM * kBK; i += kThreads) {
      const int m = i / kBK, kk = i % kBK;
      const int gm = m0 + m, gk = k0 + kk;
      xs[m * kLdX + kk] = (gm < M && gk < K) ? __float2half_rn(x[size_t(gm) * ldx + gk]) : zero;
    }
    // W tile as fp16: consecutive threads walk the stored row (n for (K, N), k for (N, K))
    for (int i = threadIdx.x; i < kBK * kBN; i += kThreads) {
      if constexpr (kTrans) {
        const int nn = i / kBK, kk = i % kBK;
        const int gk = k0 + kk, gn = n0 + nn;
        ws[nn * kLdWt + kk] = (gk < K && gn < N) ? to_half(w, size_t(gn) * K + gk) : zero;
      } else {
        const int kk = i / kBN, nn = i % kBN;
        const int gk = k0 + kk, gn = n0 + nn;
        ws[kk * kLdW + nn] = (gk < K && gn < N) ? to_half(w, size_t(gk) * N + gn) : zero;
      }
    }
    __syncthreads();
#pragma unroll
    for (int ks = 0; ks < kBK; ks += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, BLayout> b[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(a[i], xs + (wm + 16 * i) * kLdX + ks, kLdX);
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        if constexpr (kTrans)
          wmma::load_matrix_sync(b[j], ws + (wn + 16 * j) * kLdWt + ks, kLdWt);
        else
          wmma::load_matrix_sync(b[j], ws + ks * kLdW + wn + 16 * j, kLdW);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
  }
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::store_matrix_sync(cs + (wm + 16 * i) * kLdC + wn + 16 * j, acc[i][j], kLdC, wmma::mem_row_major);
  __syncthreads();
  // epilogue: bias in fp32, optional GELU, in-range elements only, coalesced along N
  for (int i = threadIdx.x; i < kBM * kBN; i += kThreads) {
    const int m = i / kBN, nn = i % kBN;
    const int gm = m0 + m, gn = n0 + nn;
    if (gm >= M || gn >= N) continue;
    const float v = cs[m * kLdC + nn] + (bias ? bias[gn] : 0.0f);
    y[size_t(gm) * ldy + gn] = act ? quick_gelu(v) : v;
  }
}

template <typename T>
cudaError_t gemm_wmma_t(const float* x, int M, int K, int N, int ldx, const T* w, bool transposed, const float* bias, float* y, int ldy, int act,
                        cudaStream_t stream) {
  const dim3 grid(gpu::ceil_div(N, kBN), gpu::ceil_div(M, kBM));
  if (grid.y > 65535u) return cudaErrorInvalidValue;
  // (a pointer: the template's comma would split JB_LAUNCH's arguments)
  auto* const kernel = transposed ? gemm_wmma_kernel<T, true> : gemm_wmma_kernel<T, false>;
  JB_LAUNCH(kernel, grid, kThreads, 0, stream)(x, M, K, N, ldx, w, bias, y, ldy, act);
  return cudaGetLastError();
}

}  // namespace

cudaError_t gemm_wmma(const float* x, int M, int K, int N, int ldx, const void* w, int dtype, bool transposed, const float* bias, float* y,
                      int ldy, bool gelu, cudaStream_t stream) {
  if (M < 0 || K < 1 || N < 1 || ldx < K || ldy < N || !x || !w || !y) return cudaErrorInvalidValue;
  if (M == 0) return cudaSuccess;
  const int act = gelu ? 1 : 0;
  switch (dtype) {
    case kWF32: return gemm_wmma_t(x, M, K, N, ldx, static_cast<const float*>(w), transposed, bias, y, ldy, act, stream);
    case kWF16: return gemm_wmma_t(x, M, K, N, ldx, static_cast<const __half*>(w), transposed, bias, y, ldy, act, stream);
    case kWBF16: return gemm_wmma_t(x, M, K, N, ldx, static_cast<const bf16_t*>(w), transposed, bias, y, ldy, act, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace cuda
}  // namespace jb
