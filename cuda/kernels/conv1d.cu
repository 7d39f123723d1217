// The VQ-VAE decoder's convolutions on the device: Conv1d and ConvTranspose1d with
// PyTorch's definitions (dilation, padding, stride), a ReLU on the input and the residual
// accumulate fused, and the codebook lookup that turns codes into the decoder's input.
// Reference: gpu_ref::conv1d / dequantize (ops_ref.h), equal to the engine's conv1d_ref /
// conv_transpose1d_ref (csrc/cpu/conv1d_ref.cc; the parity program checks both).
//
// Two kernels behind one launcher (conv1d(), ConvAlgo::Auto picks):
//
// 1. conv_tiled_*: an implicit GEMM, the CPU engine's phase formulation (csrc/cpu/conv1d.h)
//    on the device. A plain conv is one GEMM  Y[m][q] = sum_k W[m][k] X[k][q]  with
//    M = cout, N = output columns, K = cin * kernel, k = ci * ntaps + tap, and
//    X[k][q] = x[ci][q * stride + tap_off[tap]] (zero outside the input: the padding). A
//    transposed conv with stride s is s such GEMMs ("phases"): output t = q * s + r receives
//    x[ci][q + tap_off] through the taps whose kernel index k satisfies
//    (r + pad - k * dil) % s == 0, so nothing is zero-stuffed and nothing is scatter-added;
//    each phase is a stride-1 conv over its taps (2 of the 4 for the decoder's k4 s2).
//    A block computes a BM x BN tile of Y (BM output channels x BN columns of one phase of
//    one batch item) in BK-deep steps: the BK x BM weight slice and the BK x BN input
//    slice (im2col on the fly, ReLU applied as it is read) go to shared memory, and each of
//    the 256 threads accumulates a TM x TN register tile in fp32 (fmaf over k in order from
//    0, so an output's arithmetic depends on nothing but its own column: chunked decodes
//    give the same bits as whole ones). The next slice is fetched into registers while the
//    current one is multiplied (one shared buffer, two barriers per step).
//    Weights are read in PyTorch's layouts, (cout, cin, k) or (cin, cout, k): no packing
//    pass, and a weight tile is BK x BM floats per step, L1/L2-resident (the decoder's
//    convs hold 4-48 KiB of weights each).
//
//    Arithmetic, per block and BK-step (wide tile: BM 64 x BN 128, TM 8 x TN 4, BK 16;
//    narrow tile, for cout <= 32 like the default model's width 32: BM 32 x BN 256, TM 4 x
//    TN 8, BK 8):
//      FMAs          BM * BN * BK          = 131072 wide, 65536 narrow
//      loads (L1/L2) BK * (BM + BN) floats = 12 KiB wide, 9 KiB narrow: 11 / 7 FMA per byte
//      shared reads  per thread per k: TM + TN floats (the TM weights as float4 broadcasts,
//                    the TN inputs strided by BN/TN so a warp reads 32 consecutive words,
//                    conflict-free) for TM * TN = 32 FMAs: 6 (wide) / 9 (narrow) LDS
//                    instructions per 32 FMAs, inside an SM's issue budget (LDS : FFMA ~1 : 4).
//    Registers (ptxas, sm_90, __launch_bounds__(256, 2)): 128 wide / 121 narrow, no spills,
//    2 blocks (16 warps) per SM; shared memory 12.4 / 9.3 KiB per block.
//    DRAM: compulsory traffic only (the input rows a block reads, BN + dil * (k - 1) columns
//    of each ci, are reread from L1/L2 by the ntaps taps and the ceil(cout / BM) row tiles):
//    4 * (cin * tin + cout * tout (x2 when accumulating)) bytes per batch item. The default
//    decoder's dilated k3 conv (32 -> 32) does 2 * 32 * 96 = 6144 FLOP per output column for
//    256 bytes (24 FLOP/B: above an H200's ~14 FLOP/B fp32 ridge, so FMA-bound); its 1x1
//    conv (K = 32) does 2048 FLOP for 384 bytes with the accumulate (5 FLOP/B: bandwidth-
//    bound, ~0.1 us per 1k columns at 4.8 TB/s). A fused residual block (hidden tile kept in
//    shared memory, as the CPU's resblock_forward keeps it in cache) would remove the hidden
//    activation's round trip; not done yet.
//    fp32 on the CUDA cores, not TF32 tensor cores: TF32's 10-bit mantissa is ~1e-3 relative,
//    and the decoder must equal the CPU engine to ~1e-5.
//
// 2. conv1d_kernel: the plain direct convolution (a thread per output position and group of
//    kChans output channels; x read along time, coalesced; weights as warp-uniform
//    broadcasts). Kept as the device-side reference, and used where the tile would be mostly
//    empty (cout <= 8: the decoder's last conv has one output channel) or a shape has more
//    taps / phases than the tiled kernel's plan holds.
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

// ---- the tiled implicit GEMM ----------------------------------------------------------

constexpr int kBKWide = 16, kBKNarrow = 8;  // reduction depth of one shared-memory step
constexpr int kTileThreads = 256;
constexpr int kWsPad = 4;      // weight-tile row padding: fewer bank conflicts on its transposed
                               // store, rows stay 16-byte aligned for the float4 reads

// One block's tile of one phase. ws: [kBK][BM + kWsPad], xs: [kBK][BN] in shared memory;
// s_off / s_k: the phase's tap offsets and kernel indices, copied to shared memory by the
// caller (dynamic indexing into the kernel's parameter block would spill it to local memory).
template <int BM, int BN, int TM, int TN, int kBK>
__device__ __forceinline__ void conv_tile(const ConvPlan& p, int phase, int b, const float* __restrict__ x, int tin, int tout,
                                          const float* __restrict__ w, const float* __restrict__ bias, float* y, bool relu, bool accumulate,
                                          float scale, float (*ws)[BM + kWsPad], float (*xs)[BN], const int* s_off, const int* s_k) {
  constexpr int NT = (BM / TM) * (BN / TN);
  static_assert(NT == kTileThreads, "a tile is computed by 256 threads");
  static_assert((kBK * BM) % NT == 0 && (kBK * BN) % NT == 0, "whole loads per thread");
  static_assert(TM % 4 == 0, "weights are read as float4");
  constexpr int WL = kBK * BM / NT, XL = kBK * BN / NT, CN = BN / TN;
  const int tid = threadIdx.x;
  const int tn = tid % CN, tm = tid / CN;
  const int cols = (tout - phase + p.out_stride - 1) / p.out_stride;  // this phase's output columns
  const int q0 = blockIdx.x * BN, m0 = blockIdx.y * BM;
  const int ntaps = p.ph[phase].ntaps, K = p.cin * ntaps;
  const float* xb = x + size_t(b) * p.cin * tin;

  float wr[WL], xr[XL];
  // Global -> registers for the step at k0 (zeros past K, past cout, past the columns, and
  // outside the input: the padding).
  auto fetch = [&](int k0) {
#pragma unroll
    for (int r = 0; r < WL; ++r) {
      const int i = tid + r * NT, kk = i % kBK, mm = i / kBK;
      const int k = k0 + kk, m = m0 + mm;
      float v = 0.0f;
      if (k < K && m < p.cout) {
        const int ci = k / ntaps, tk = s_k[k - ci * ntaps];
        v = p.transposed ? w[(size_t(ci) * p.cout + m) * p.kernel + tk] : w[(size_t(m) * p.cin + ci) * p.kernel + tk];
      }
      wr[r] = v;
    }
#pragma unroll
    for (int r = 0; r < XL; ++r) {
      const int i = tid + r * NT, nn = i % BN, kk = i / BN;
      const int k = k0 + kk, q = q0 + nn;
      float v = 0.0f;
      if (k < K && q < cols) {
        const int ci = k / ntaps;
        const int s = q * p.in_stride + s_off[k - ci * ntaps];  // |s| < 2^31: conv_plan bounds the offsets
        if (s >= 0 && s < tin) v = xb[size_t(ci) * tin + s];
        if (relu) v = fmaxf(v, 0.0f);
      }
      xr[r] = v;
    }
  };

  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

  if (K > 0) fetch(0);
  for (int k0 = 0; k0 < K; k0 += kBK) {
#pragma unroll
    for (int r = 0; r < WL; ++r) {
      const int i = tid + r * NT;
      ws[i % kBK][i / kBK] = wr[r];
    }
#pragma unroll
    for (int r = 0; r < XL; ++r) {
      const int i = tid + r * NT;
      xs[i / BN][i % BN] = xr[r];
    }
    __syncthreads();
    if (k0 + kBK < K) fetch(k0 + kBK);  // in flight while this step multiplies
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      float a[TM], bv[TN];
#pragma unroll
      for (int i4 = 0; i4 < TM / 4; ++i4) {
        const float4 v = reinterpret_cast<const float4*>(&ws[kk][tm * TM])[i4];
        a[4 * i4] = v.x;
        a[4 * i4 + 1] = v.y;
        a[4 * i4 + 2] = v.z;
        a[4 * i4 + 3] = v.w;
      }
#pragma unroll
      for (int j = 0; j < TN; ++j) bv[j] = xs[kk][tn + j * CN];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], bv[j], acc[i][j]);
    }
    __syncthreads();  // before the next step overwrites the tiles
  }

  // Epilogue: bias, then store or accumulate (y += scale * (conv + bias), the engine's
  // order), at t = q * out_stride + phase.
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int m = m0 + tm * TM + i;
    if (m >= p.cout) continue;
    const float bm = bias ? bias[m] : 0.0f;
    float* yr = y + (size_t(b) * p.cout + m) * tout;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int q = q0 + tn + j * CN;
      if (q >= cols) continue;
      float* out = yr + size_t(q) * p.out_stride + phase;
      const float v = __fadd_rn(acc[i][j], bm);
      *out = accumulate ? __fadd_rn(*out, __fmul_rn(scale, v)) : v;
    }
  }
}

// The two tile shapes as plain (non-template) kernels, each with its own static shared
// memory (the emulator finds a kernel's __shared__ variables by the kernel's name).
#define JB_CONV_TILED_KERNEL(NAME, BM, BN, TM, TN, kBK)                                                                          \
  __global__ void __launch_bounds__(kTileThreads, 2) NAME(const __grid_constant__ ConvPlan p, const float* __restrict__ x, int tin, \
                                                       int tout, const float* __restrict__ w, const float* __restrict__ bias,    \
                                                       float* y, bool relu, bool accumulate, float scale) {                      \
    __shared__ __align__(16) float ws[kBK][BM + kWsPad];                                                                         \
    __shared__ float xs[kBK][BN];                                                                                                \
    __shared__ int s_off[kConvMaxTaps], s_k[kConvMaxTaps];                                                                       \
    const int phase = blockIdx.z % p.nphase, b = blockIdx.z / p.nphase;                                                          \
    const int cols = (tout - phase + p.out_stride - 1) / p.out_stride;                                                           \
    if (int(blockIdx.x) * (BN) >= cols) return; /* the whole block: a shorter phase */                                           \
    if (threadIdx.x < kConvMaxTaps) {                                                                                            \
      s_off[threadIdx.x] = p.ph[phase].tap_off[threadIdx.x];                                                                     \
      s_k[threadIdx.x] = p.ph[phase].tap_k[threadIdx.x];                                                                         \
    }                                                                                                                            \
    __syncthreads();                                                                                                             \
    conv_tile<BM, BN, TM, TN, kBK>(p, phase, b, x, tin, tout, w, bias, y, relu, accumulate, scale, ws, xs, s_off, s_k);          \
  }

JB_CONV_TILED_KERNEL(conv_tiled_wide_kernel, 64, 128, 8, 4, kBKWide)
JB_CONV_TILED_KERNEL(conv_tiled_narrow_kernel, 32, 256, 4, 8, kBKNarrow)
#undef JB_CONV_TILED_KERNEL

constexpr int kWideBM = 64, kWideBN = 128, kNarrowBM = 32, kNarrowBN = 256;

__global__ void dequantize_kernel(const int32_t* __restrict__ codes, int t, const float* __restrict__ codebook, int bins, int width,
                                  float* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;  // time
  const int b = blockIdx.z;
  if (i >= t) return;
  int code = codes[size_t(b) * t + i];
  code = code < 0 ? 0 : (code >= bins ? bins - 1 : code);  // the launcher's caller validates codes
  for (int c = blockIdx.y; c < width; c += gridDim.y) out[(size_t(b) * width + c) * t + i] = codebook[size_t(code) * width + c];
}

long long floor_div(long long a, long long b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

bool shape_ok(const ConvShape& c) {
  return c.cin >= 1 && c.cout >= 1 && c.kernel >= 1 && c.stride >= 1 && c.dilation >= 1 && c.pad >= 0 &&
         (long long)c.dilation * (c.kernel - 1) <= kConvMaxSpan && c.pad <= kConvMaxSpan && c.stride <= kConvMaxSpan;
}

}  // namespace

int conv_out_len(const ConvShape& c, int tin) {
  // 64-bit, as ConvParams::out_len: 2 * pad and dilation * (kernel - 1) overflow an int near 2^30.
  const long long span = (long long)c.dilation * (c.kernel - 1);
  const long long len = c.transposed ? ((long long)tin - 1) * c.stride - 2LL * c.pad + span + 1
                                     : floor_div((long long)tin + 2LL * c.pad - span - 1, c.stride) + 1;
  return len < 0 || len > 0x7fffffffLL ? -1 : int(len);
}

bool conv_plan(const ConvShape& c, ConvPlan* out) {
  if (!out || !shape_ok(c)) return false;
  ConvPlan p;
  p.cin = c.cin;
  p.cout = c.cout;
  p.kernel = c.kernel;
  p.transposed = c.transposed ? 1 : 0;
  if (!c.transposed) {
    if (c.kernel > kConvMaxTaps) return false;
    p.in_stride = c.stride;
    p.out_stride = 1;
    p.nphase = 1;
    p.ph[0].ntaps = c.kernel;
    for (int k = 0; k < c.kernel; ++k) {
      p.ph[0].tap_off[k] = k * c.dilation - c.pad;
      p.ph[0].tap_k[k] = k;
    }
  } else {
    if (c.stride > kConvMaxPhases) return false;
    p.in_stride = 1;
    p.out_stride = c.stride;
    p.nphase = c.stride;
    // Output t = q * s + r takes x[q + (r + pad - k * dil) / s] through tap k when the
    // division is exact (conv1d.h's phases).
    for (int r = 0; r < c.stride; ++r) {
      ConvPlan::Phase& ph = p.ph[r];
      ph.ntaps = 0;
      for (int k = 0; k < c.kernel; ++k) {
        const long long num = (long long)r + c.pad - (long long)k * c.dilation;
        if (((num % c.stride) + c.stride) % c.stride != 0) continue;
        if (ph.ntaps == kConvMaxTaps) return false;
        ph.tap_off[ph.ntaps] = int(floor_div(num, c.stride));
        ph.tap_k[ph.ntaps] = k;
        ++ph.ntaps;
      }
    }
  }
  *out = p;
  return true;
}

double conv_flops(const ConvShape& c, int n, int tin) {
  const int tout = conv_out_len(c, tin);
  ConvPlan p;
  if (tout < 1) return 0.0;
  if (!conv_plan(c, &p)) return 2.0 * n * c.cout * c.cin * double(c.kernel) * tout / (c.transposed ? c.stride : 1);
  double f = 0;
  for (int r = 0; r < p.nphase; ++r) {
    const int cols = (tout - r + p.out_stride - 1) / p.out_stride;
    if (cols > 0) f += 2.0 * n * c.cout * double(c.cin) * p.ph[r].ntaps * cols;
  }
  return f;
}

cudaError_t conv1d(const ConvShape& c, const float* x, int n, int tin, const float* w, const float* bias, float* y, bool relu_input,
                   bool accumulate, float scale, cudaStream_t stream, ConvAlgo algo) {
  if (n < 1 || tin < 1 || !shape_ok(c) || !x || !w || !y) return cudaErrorInvalidValue;
  const int tout = conv_out_len(c, tin);
  if (tout < 1) return cudaErrorInvalidValue;
  ConvPlan p;
  const bool plannable = conv_plan(c, &p);
  if (algo == ConvAlgo::Tiled && !plannable) return cudaErrorInvalidValue;
  const bool tiled = algo == ConvAlgo::Tiled || (algo == ConvAlgo::Auto && plannable && c.cout > 8);
  if (!tiled) {
    const dim3 grid((tout + kThreads - 1) / kThreads, (c.cout + kChans - 1) / kChans, n);
    JB_LAUNCH(conv1d_kernel, grid, kThreads, 0, stream)(c, x, tin, tout, w, bias, y, relu_input, accumulate, scale);
    return cudaGetLastError();
  }
  if ((long long)n * p.nphase > 65535) return cudaErrorInvalidValue;
  const int cols0 = (tout + p.out_stride - 1) / p.out_stride;  // phase 0 is the longest
  if (c.cout > kNarrowBM) {
    const dim3 grid((cols0 + kWideBN - 1) / kWideBN, (c.cout + kWideBM - 1) / kWideBM, n * p.nphase);
    JB_LAUNCH(conv_tiled_wide_kernel, grid, kTileThreads, 0, stream)(p, x, tin, tout, w, bias, y, relu_input, accumulate, scale);
  } else {
    const dim3 grid((cols0 + kNarrowBN - 1) / kNarrowBN, 1, n * p.nphase);
    JB_LAUNCH(conv_tiled_narrow_kernel, grid, kTileThreads, 0, stream)(p, x, tin, tout, w, bias, y, relu_input, accumulate, scale);
  }
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
