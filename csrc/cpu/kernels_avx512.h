// The AVX-512 kernels as one table, defined in dispatch_avx512.cc.
//
// The kernels themselves (*_avx512.cc) are compiled with AVX-512 flags in a separate part
// of the build (binding.gyp target jukebox_avx512), so no AVX-512 instruction can reach
// code that runs on other CPUs. The dispatch points (conv1d, matmul, vq, vec, fma_peak)
// reach them only through this table, and only when cpu_features has selected Isa::Avx512,
// which it does only when the table is linked into the program: a program built from a
// subset of csrc/cpu without these files (the CUDA helper tests) still links and runs the
// AVX2 kernels.
#pragma once
#include <cstdint>

#include "gemm_ukernel.h"
#include "vec.h"

namespace jb {

class Codebook;

struct Avx512Kernels {
  // gemm_ukernel.h
  UKernel ukernel;
  TileGemm tile_gemm;
  PackRow pack_row;
  // gemv.h (the same contracts as the *_avx2 functions there)
  void (*gemv_krange)(const float* x, int M, int ldx, const void* w, bool f16, int N, int k0, int k1,
                      int j0, int nc, float* acc, int ldacc);
  void (*dots)(const float* x, int M, int ldx, const void* w, bool f16, int K, int j0, int nc,
               float* acc, int ldacc);
  void (*widen_f16)(const uint16_t* src, float* dst, int n);
  void (*gemv_krange_bf16)(const float* x, int M, int ldx, const uint16_t* w, int N, int k0, int k1, int j0,
                           int nc, float* acc, int ldacc);
  // gemv.h's int8 kernels
  void (*gemv_krange_i8)(const float* x, int M, int ldx, const int8_t* w, int N, int k0, int k1, int j0,
                         int nc, float* acc, int ldacc);
  void (*dots_i8)(const float* x, int M, int ldx, const int8_t* w, int K, int j0, int nc, float* acc,
                  int ldacc);
  void (*dequant_i8)(const int8_t* q, const float* scales, float* dst, int n);
  // vec.h
  DotFn dot;
  AxpyFn axpy;
  // vq.h
  void (*vq_rows)(const Codebook& cb, const float* x, int r0, int r1, int32_t* out);
  // fma_peak.cc: independent FMA chains, no memory traffic; flops per iteration
  float (*fma_loop)(long iters, float seed);
  double fma_flops_per_iter;
};

// The table, or null when this program was linked without the AVX-512 kernels (then
// detected_isa() never reports Isa::Avx512). Defined in cpu_features.cc.
const Avx512Kernels* avx512_kernels();

}  // namespace jb
