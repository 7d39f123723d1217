// Row-major matrix products for the transformer: y = x . W (+ bias), x (M, K) activations,
// W (K, N) weights as the original's Conv1D stores them ((in, out)), or (N, K) for
// nn.Linear / embedding-tied outputs. Weights may be fp32, fp16 or bf16 and are widened to
// fp32 while packing, so fp16 checkpoints stay fp16 in memory.
//
// int8 (DType::I8, `jukebox convert --dtype int8`): weight-only, symmetric, one fp32 scale
// per output channel, W[k][n] = q[k][n] * scales[n] for the logical (K, N) matrix. The
// output channel is the logical column n in both stored layouts: stored (K, N) that is a
// stored column, stored (N, K) (transposed) a stored row; `scale_rows` records which axis
// of the *stored* tensor the scales run along (the file's scale tensor says, lib/
// checkpoint/dtype-convert.ts), and matmul() refuses a view where the two disagree. The
// int8 values are never expanded in memory: the few-row kernels widen them in registers
// and apply the scale once per output, the GEMM dequantises them while packing a panel.
#pragma once
#include <cstdint>

#include "../core/thread_pool.h"

namespace jb {

enum class DType { F32, F16, BF16, I8 };

struct WeightView {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int k = 0, n = 0;         // logical shape (K, N): y = x . W
  bool transposed = false;  // stored as (N, K) (nn.Linear weight, x_out tied to x_emb)
  // I8 only: one scale per stored row (scale_rows) or per stored column, finite, >= 0.
  const float* scales = nullptr;
  bool scale_rows = false;
  float at(int row, int col) const;  // W[row][col] of the logical (K, N) matrix
  // Row `r` of the stored matrix widened to fp32 (for embedding lookups): `len` values.
  void row_f32(int r, float* out) const;
  int stored_cols() const { return transposed ? k : n; }
};

// y[m][n] = (accumulate ? y[m][n] : 0) + sum_k x[m][k] * W[k][n] + (bias ? bias[n] : 0)
void matmul(const float* x, int M, int ldx, const WeightView& w, const float* bias, float* y,
            int ldy, bool accumulate, ThreadPool& pool);
// The plain reference (double accumulation over at(): int8 dequantised element by element).
void matmul_ref(const float* x, int M, int ldx, const WeightView& w, const float* bias, float* y,
                int ldy, bool accumulate);

}  // namespace jb
