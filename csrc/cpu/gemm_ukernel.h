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

using UKernel = void (*)(int K, const float* a, const float* b, float* c, int ldc,
                         bool accumulate);

void ukernel_generic(int K, const float* a, const float* b, float* c, int ldc, bool accumulate);
void ukernel_avx2(int K, const float* a, const float* b, float* c, int ldc, bool accumulate);

UKernel active_ukernel();  // by cpu_features' active ISA

// Copies one NR-wide row of input into a packed panel, optionally through ReLU. Packing
// runs once per panel and is reused by every weight panel, but done scalar it costs as
// much as the micro-kernel itself, so it is vectorised too.
using PackRow = void (*)(const float* src, float* dst, bool relu);
void pack_row_generic(const float* src, float* dst, bool relu);
void pack_row_avx2(const float* src, float* dst, bool relu);
PackRow active_pack_row();

}  // namespace jb
