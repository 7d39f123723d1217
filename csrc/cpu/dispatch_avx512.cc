// The table of AVX-512 kernels (kernels_avx512.h). This file is built with the default
// flags; the kernels it points to are in the AVX-512-compiled *_avx512.cc files, which
// these references pull into the link. cpu_features.cc refers to the table weakly, so a
// program without it never selects the AVX-512 kernels.
#include "kernels_avx512.h"

#if defined(__x86_64__)
#include "gemv.h"
#include "vq.h"

namespace jb {

float fma_loop_avx512(long iters, float seed);  // fma_peak_avx512.cc

extern const Avx512Kernels kAvx512Kernels;
const Avx512Kernels kAvx512Kernels = {
    ukernel_avx512,
    tile_gemm_avx512,
    pack_row_avx512,
    gemv_krange_avx512,
    dots_avx512,
    widen_f16_avx512,
    gemv_krange_bf16_avx512,
    gemv_krange_i8_avx512,
    dots_i8_avx512,
    dequant_i8_avx512,
    dot_avx512,
    axpy_avx512,
    vq_rows_avx512,
    fma_loop_avx512,
    16.0 * 16 * 2,  // 16 chains x 16 lanes x 2 flops per iteration
};

}  // namespace jb

#endif
