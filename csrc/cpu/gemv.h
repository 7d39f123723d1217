// Few-row products for token-by-token decoding (M <= 16 rows of activations): every weight
// is read once from memory, so the speed is the memory bandwidth, and fp16 weights are
// read as fp16 (half the bytes) and widened in registers (F16C; bf16 and int8 likewise).
//   gemv_krange: W stored (K, N), a band of its rows; acc[m][j] = sum_k x[m][k] W[k][j0 + j]
//   dots: W stored (N, K) rows; acc[m][j] = dot(x[m], W[j0 + j])
#pragma once
#include <cstdint>

namespace jb {

// Rows [k0, k1) of W stored (K, N), columns [j0, j0 + nc):
//   acc[m][j - j0] = sum_{k0<=k<k1} x[m][k] W[k][j]
// W is read front to back as a few sequential row streams (splitting K across threads
// keeps every thread's streams sequential); acc (M x nc, row stride ldacc) is overwritten.
// j0 must be a multiple of 16, and so must nc unless the block ends at column N: each
// output's arithmetic is then the same however the columns are blocked.
void gemv_krange_avx2(const float* x, int M, int ldx, const void* w, bool f16, int N, int k0, int k1,
                      int j0, int nc, float* acc, int ldacc);
void dots_avx2(const float* x, int M, int ldx, const void* w, bool f16, int K, int j0, int nc,
               float* acc, int ldacc);
// dst[i] = fp16 src[i] widened to fp32 (exact), with F16C.
void widen_f16_avx2(const uint16_t* src, float* dst, int n);

// The AVX-512 versions (gemv_avx512.cc; reached through kernels_avx512.h's table).
void gemv_krange_avx512(const float* x, int M, int ldx, const void* w, bool f16, int N, int k0, int k1,
                        int j0, int nc, float* acc, int ldacc);
void dots_avx512(const float* x, int M, int ldx, const void* w, bool f16, int K, int j0, int nc,
                 float* acc, int ldacc);
void widen_f16_avx512(const uint16_t* src, float* dst, int n);

// bf16 weights (DType::BF16): gemv_krange's contract with W's bf16 values widened exactly
// (bits << 16) in registers: the same bits as gemv_krange on an fp32 copy of W.
void gemv_krange_bf16_avx2(const float* x, int M, int ldx, const uint16_t* w, int N, int k0, int k1, int j0,
                           int nc, float* acc, int ldacc);
void gemv_krange_bf16_avx512(const float* x, int M, int ldx, const uint16_t* w, int N, int k0, int k1, int j0,
                             int nc, float* acc, int ldacc);

// int8 weights (DType::I8, matmul.h), the same contracts over the raw int8 values, without
// the scales: the caller multiplies each output by its channel's scale once, after the
// sum (sum_k x[k] * (q[k] * s) = s * sum_k x[k] * q[k]; one multiply per output instead
// of one per weight, and the int8 -> fp32 widening is exact). The arithmetic is fp32
// throughout (activations are not quantised; see gemv_i8_avx512.cc for why).
//   gemv_krange_i8: as gemv_krange; every output is acc = 0, then acc = fma(x[k], q[k][j],
//     acc) for k in order in the vector columns, and acc += x[k] * q[k][j] (unfused) in the
//     matrix's last N % 16 columns: AVX2 and AVX-512 give the same bits. The portable one
//     is plain C++ (acc += x * q, unfused, everywhere).
//   dots_i8: as dots, W stored (N, K) rows.
//   dequant_i8: dst[i] = q[i] * scales[i] (exact product of two floats rounded once: the
//     value at() gives), the GEMM's packing step.
void gemv_krange_i8_generic(const float* x, int M, int ldx, const int8_t* w, int N, int k0, int k1, int j0,
                            int nc, float* acc, int ldacc);
void dots_i8_generic(const float* x, int M, int ldx, const int8_t* w, int K, int j0, int nc, float* acc,
                     int ldacc);
void dequant_i8_generic(const int8_t* q, const float* scales, float* dst, int n);
void gemv_krange_i8_avx2(const float* x, int M, int ldx, const int8_t* w, int N, int k0, int k1, int j0,
                         int nc, float* acc, int ldacc);
void dots_i8_avx2(const float* x, int M, int ldx, const int8_t* w, int K, int j0, int nc, float* acc,
                  int ldacc);
void dequant_i8_avx2(const int8_t* q, const float* scales, float* dst, int n);
void gemv_krange_i8_avx512(const float* x, int M, int ldx, const int8_t* w, int N, int k0, int k1, int j0,
                           int nc, float* acc, int ldacc);
void dots_i8_avx512(const float* x, int M, int ldx, const int8_t* w, int K, int j0, int nc, float* acc,
                    int ldacc);
void dequant_i8_avx512(const int8_t* q, const float* scales, float* dst, int n);

}  // namespace jb
