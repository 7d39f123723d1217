// Row-major matrix products for the transformer: y = x . W (+ bias), x (M, K) activations,
// W (K, N) weights as the original's Conv1D stores them ((in, out)), or (N, K) for
// nn.Linear / embedding-tied outputs. Weights may be fp32, fp16 or bf16 and are widened to
// fp32 while packing, so fp16 checkpoints stay fp16 in memory.
#pragma once
#include <cstdint>

#include "../core/thread_pool.h"

namespace jb {

enum class DType { F32, F16, BF16 };

struct WeightView {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int k = 0, n = 0;         // logical shape (K, N): y = x . W
  bool transposed = false;  // stored as (N, K) (nn.Linear weight, x_out tied to x_emb)
  float at(int row, int col) const;  // W[row][col] of the logical (K, N) matrix
  // Row `r` of the stored matrix widened to fp32 (for embedding lookups): `len` values.
  void row_f32(int r, float* out) const;
  int stored_cols() const { return transposed ? k : n; }
};

// y[m][n] = (accumulate ? y[m][n] : 0) + sum_k x[m][k] * W[k][n] + (bias ? bias[n] : 0)
void matmul(const float* x, int M, int ldx, const WeightView& w, const float* bias, float* y,
            int ldy, bool accumulate, ThreadPool& pool);
void matmul_ref(const float* x, int M, int ldx, const WeightView& w, const float* bias, float* y,
                int ldy, bool accumulate);

}  // namespace jb
