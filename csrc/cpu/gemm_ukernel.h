// The GEMM micro-kernel every conv and matmul in the CPU backend ends in.
//
// c[MR x NR] (row stride ldc) = (accumulate ? c : 0) + sum_k a[k*MR + r] * b[k*NR + j]
//
// `a` is one packed MR-row panel of the weights, `b` one packed NR-column panel of the
// input; both are K groups of contiguous values so the kernel streams them linearly.
#pragma once

namespace jb {

// 4 x 24 floats = 12 AVX2 accumulators; per k step 3 loads and 4 broadcasts feed 12 FMAs.
// Layer widths in Jukebox are multiples of 4 (1, 32, 64, 1024, ...), so no rows are wasted.
constexpr int kMR = 4;
constexpr int kNR = 24;

// Output columns per conv task / tile (conv1d.cc): whole panels, and an even number of them
// (4), because the AVX-512 tile kernel covers 2 panels per pass: with 120 columns (5
// panels) a fifth of every tile went through its 1-panel edge kernel.
constexpr int kConvTileCols = 4 * kNR;

using UKernel = void (*)(int K, const float* a, const float* b, float* c, int ldc,
                         bool accumulate);

void ukernel_generic(int K, const float* a, const float* b, float* c, int ldc, bool accumulate);
void ukernel_avx2(int K, const float* a, const float* b, float* c, int ldc, bool accumulate);
void ukernel_avx512(int K, const float* a, const float* b, float* c, int ldc, bool accumulate);

UKernel active_ukernel();  // by cpu_features' active ISA

// A whole tile of panels: panels_m packed MR-row panels of a (panel p at a + p*K*MR)
// against panels_n packed NR-column panels of b (panel q at b + q*K*NR):
//   c[p*MR + r][q*NR + j] (row stride ldc) = sum_k a_p[k*MR + r] * b_q[k*NR + j]
// (overwritten). Every output is one FMA chain over k in order in the AVX2 and AVX-512
// kernels, so the two give the same bits; the AVX-512 one covers 2 x 2 panels (8 x 48,
// 24 of its 32 registers) per pass, fewer loads and instructions per FMA.
using TileGemm = void (*)(int K, const float* a, int panels_m, const float* b, int panels_n,
                          float* c, int ldc);
void tile_gemm_generic(int K, const float* a, int panels_m, const float* b, int panels_n, float* c, int ldc);
void tile_gemm_avx2(int K, const float* a, int panels_m, const float* b, int panels_n, float* c, int ldc);
void tile_gemm_avx512(int K, const float* a, int panels_m, const float* b, int panels_n, float* c, int ldc);
TileGemm active_tile_gemm();

// Copies n consecutive NR-wide pieces of one input row into n packed panels, optionally
// through ReLU: piece i (src + i * NR) to dst + i * dst_stride. Packing runs once per
// panel and is reused by every weight panel, but done scalar it costs as much as the
// micro-kernel itself, so it is vectorised too; and a whole row per call, because one
// call per 24 floats cost as much as the packing (32-channel convs: a fifth of a decode).
using PackRow = void (*)(const float* src, float* dst, long dst_stride, int n, bool relu);
void pack_row_generic(const float* src, float* dst, long dst_stride, int n, bool relu);
void pack_row_avx2(const float* src, float* dst, long dst_stride, int n, bool relu);
void pack_row_avx512(const float* src, float* dst, long dst_stride, int n, bool relu);
PackRow active_pack_row();

}  // namespace jb
