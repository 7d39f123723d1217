// Tiled GEMM for many rows: the prefill of a window's known prefix (up to 7168 positions x
// 16 samples at level 0), the teacher-forced forward, and the encoder's keys/values, where
// gemv.cu (M <= 16) would reread every weight once per 16 rows.
//
// y (M x N) = x (M x K) . W + bias [, quick-GELU], W stored (K, N) or (N, K) (transposed)
// in fp32, fp16 or bf16 (wtype.cuh). A block of 256 threads computes a 64 x 64 tile of y,
// each thread a 4 x 4 register tile (rows ty + 16 r, columns tx + 16 c: the shared-memory
// reads of a warp are broadcasts or consecutive words, no bank conflicts), walking K in
// steps of 16 with an x tile (64 x 16) and a W tile (16 x 64) staged in shared memory, the
// weights widened to fp32 as they are staged. Arithmetic: fp32 fmaf, k in order from 0,
// the bias added last, so each output is the same whatever M is and whichever rows share its
// tile (a chunked prefill gives a one-pass prefill's bits), and fixtures with fp32 weights
// stay within ~1e-6 relative of the CPU engine's fp32 GEMM (summation order only).
//
// Bytes and FLOPs per block and K step: 64 x 16 x 4 bytes of x and 64 x 16 x sizeof(T) of
// W from global (L2) memory for 2 x 64 x 64 x 16 = 131k FLOPs: 64 FLOPs per loaded float of
// x and 32-128 per weight byte, so the kernel is compute bound on CUDA cores well before it is
// bandwidth bound (the prefill's arithmetic intensity is M-fold that of the decode GEMV).
// Loads are coalesced along the contiguous axis of each operand (a warp reads 128-byte
// rows); no split-K partials go through global memory. The tensor-core variant
// (gemm_wmma.cu: fp16 inputs, fp32 accumulation) is faster on a GPU but moves logits by
// ~1e-3, so it is opt-in (JUKEBOX_CUDA_PREFILL=tensor, read at prior_create).
// Reference: ops_ref.h gemm_any (= csrc/cpu/matmul.cc matmul_ref, any dtype).
#include "kernels.h"
#include "wtype.cuh"
#include "../common/jb_launch.h"

namespace jb {
namespace cuda {

namespace {

constexpr int kBM = 64, kBN = 64, kBK = 16, kThreads = 256;

template <typename T, bool kTrans>
__global__ void gemm_kernel(const float* __restrict__ x, int M, int K, int N, int ldx, const T* __restrict__ w, const float* __restrict__ bias,
                            float* __restrict__ y, int ldy, int act) {
  __shared__ float xs[kBK][kBM + 1];
  __shared__ float ws[kBK][kBN + 1];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN;
  float acc[4][4];
#pragma unroll
  for (int r = 0; r < 4; ++r)
#pragma unroll
    for (int c = 0; c < 4; ++c) acc[r][c] = 0.0f;
  for (int k0 = 0; k0 < K; k0 += kBK) {
    __syncthreads();  // the previous step's tiles are consumed
    // x tile: consecutive threads read consecutive k of a row (64-byte runs)
    for (int i = threadIdx.x; i < kBM * kBK; i += kThreads) {
      const int m = i / kBK, kk = i % kBK;
      const int gm = m0 + m, gk = k0 + kk;
      xs[kk][m] = (gm < M && gk < K) ? x[size_t(gm) * ldx + gk] : 0.0f;
    }
    // W tile, widened: consecutive threads walk the stored row (n for (K, N), k for (N, K))
    for (int i = threadIdx.x; i < kBK * kBN; i += kThreads) {
      int kk, nn;
      if (kTrans) {
        nn = i / kBK;
        kk = i % kBK;
      } else {
        kk = i / kBN;
        nn = i % kBN;
      }
      const int gk = k0 + kk, gn = n0 + nn;
      float v = 0.0f;
      if (gk < K && gn < N) v = kTrans ? wload(w, size_t(gn) * K + gk) : wload(w, size_t(gk) * N + gn);
      ws[kk][nn] = v;
    }
    __syncthreads();
    const int kc = min(kBK, K - k0);
    for (int kk = 0; kk < kc; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) a[r] = xs[kk][ty + 16 * r];
#pragma unroll
      for (int c = 0; c < 4; ++c) b[c] = ws[kk][tx + 16 * c];
#pragma unroll
      for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int c = 0; c < 4; ++c) acc[r][c] = fmaf(a[r], b[c], acc[r][c]);
    }
  }
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const int gm = m0 + ty + 16 * r;
    if (gm >= M) continue;
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const int gn = n0 + tx + 16 * c;
      if (gn >= N) continue;
      float v = acc[r][c] + (bias ? bias[gn] : 0.0f);
      y[size_t(gm) * ldy + gn] = act ? quick_gelu(v) : v;
    }
  }
}

template <typename T>
cudaError_t gemm_t(const float* x, int M, int K, int N, int ldx, const T* w, bool transposed, const float* bias, float* y, int ldy, int act,
                   cudaStream_t stream) {
  const dim3 grid(gpu::ceil_div(N, kBN), gpu::ceil_div(M, kBM));
  if (grid.y > 65535u) return cudaErrorInvalidValue;
  // (a pointer: the template's comma would split JB_LAUNCH's arguments)
  auto* const kernel = transposed ? gemm_kernel<T, true> : gemm_kernel<T, false>;
  JB_LAUNCH(kernel, grid, kThreads, 0, stream)(x, M, K, N, ldx, w, bias, y, ldy, act);
  return cudaGetLastError();
}

}  // namespace

cudaError_t gemm(const float* x, int M, int K, int N, int ldx, const void* w, int dtype, bool transposed, const float* bias, float* y,
                 int ldy, bool gelu, cudaStream_t stream) {
  if (M < 0 || K < 1 || N < 1 || ldx < K || ldy < N || !x || !w || !y) return cudaErrorInvalidValue;
  if (M == 0) return cudaSuccess;
  const int act = gelu ? 1 : 0;
  switch (dtype) {
    case kWF32: return gemm_t(x, M, K, N, ldx, static_cast<const float*>(w), transposed, bias, y, ldy, act, stream);
    case kWF16: return gemm_t(x, M, K, N, ldx, static_cast<const __half*>(w), transposed, bias, y, ldy, act, stream);
    case kWBF16: return gemm_t(x, M, K, N, ldx, static_cast<const bf16_t*>(w), transposed, bias, y, ldy, act, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace cuda
}  // namespace jb
