// 1-D convolution and transposed convolution (PyTorch Conv1d / ConvTranspose1d semantics)
// on NCT tensors, as implicit GEMMs over the micro-kernel in gemm_ukernel.h.
//
// Both become one or more "phase" GEMMs: output column j of a phase reads input position
// j*in_stride + tap_off[tap] for each tap (zero outside the input) and writes output
// position j*out_stride + out_phase. A plain conv is one phase with tap_off = k*dil - pad.
// A transposed conv with stride s is s phases, each a stride-1 conv over the taps whose
// kernel index matches that output phase, so no zero-stuffing and no scatter-add.
#pragma once
#include <vector>

#include "../core/buffer.h"
#include "../core/tensor.h"
#include "../core/thread_pool.h"
#include "gemm_ukernel.h"

namespace jb {

// kConvTileCols (output columns per task / tile, whole kNR panels) is in gemm_ukernel.h,
// whose AVX-512 packing prefetches by it.
constexpr int kTileMR = 4;           // == kMR of gemm_ukernel.h (checked there)

struct ConvParams {
  int cin = 0, cout = 0, kernel = 1, stride = 1, pad = 0, dilation = 1;
  bool transposed = false;
  // Length of the output for an input of length tin (PyTorch's formulas, output_padding 0).
  int out_len(int tin) const;
};

// What to do with the conv result before it lands in the output.
struct ConvEpilogue {
  bool relu_input = false;  // apply ReLU to the input as it is read (fuses nn.ReLU before conv)
  bool accumulate = false;  // y += scale * (conv + bias) instead of y = conv + bias
  float scale = 1.0f;       // only with accumulate (residual scale)
};

struct ConvPhase {
  int ntaps = 0;
  std::vector<int> tap_off;
  int in_stride = 1, out_stride = 1, out_phase = 0;
  int M = 0, K = 0;     // cout, cin * ntaps (k index = ci * ntaps + tap)
  Buffer<float> panels; // weights packed into MR-row panels of K groups of MR floats
};

class Conv1d {
 public:
  // weight: Conv1d (cout, cin, k) or ConvTranspose1d (cin, cout, k), row-major float32.
  Conv1d(const ConvParams& p, const float* weight, const float* bias);

  const ConvParams& params() const { return p_; }
  const float* bias() const { return bias_.data(); }
  int phases() const { return int(phases_.size()); }
  int max_k() const;  // largest GEMM depth over the phases (sizes the packing scratch)
  // Rows of a GEMM tile: cout rounded up to the micro-kernel's MR.
  int tile_rows() const { return (p_.cout + kTileMR - 1) / kTileMR * kTileMR; }
  // The raw GEMM (no bias) of phase `phase` for its output columns [q0, q0 + cols), cols <=
  // kConvTileCols, of one batch item `xb` (cin x tin): tile rows m, row stride
  // kConvTileCols. `packed` is scratch for max_k() * kConvTileCols floats.
  void gemm_tile(int phase, const float* xb, int tin, int q0, int cols, bool relu_input,
                 float* packed, float* tile) const;
  // Packed weights of MR-row panel `panel` of a phase (K groups of MR floats).
  const float* weight_panel(int phase, int panel) const;
  // Output columns of a phase for an output of length tout.
  int phase_cols(int phase, int tout) const;
  // y must hold x.n * cout * out_len(x.t) floats (read too when ep.accumulate).
  void forward(ConstNCTView x, NCTView y, const ConvEpilogue& ep, ThreadPool& pool) const;
  double flops(int batch, int tin) const;  // 2 * multiply-adds actually performed

 private:
  ConvParams p_;
  std::vector<ConvPhase> phases_;
  Buffer<float> bias_;
};

// A residual block fused per column tile so its hidden activation never leaves cache:
//   y = x + scale * b(relu(a(relu(x))))
// for `a` a stride-1 conv keeping the length and `b` a 1-wide conv back to x's width
// (ResConv1DBlock in the VQ-VAE and the upsampler conditioners). y must not alias x.
bool can_fuse_resblock(const Conv1d& a, const Conv1d& b, int tin);
void resblock_forward(const Conv1d& a, const Conv1d& b, float scale, ConstNCTView x, NCTView y,
                      ThreadPool& pool);

// Plain loop references with PyTorch's exact definitions; the tests compare against them.
void conv1d_ref(const ConvParams& p, const float* x, int n, int tin, const float* weight,
                const float* bias, float* y);
void conv_transpose1d_ref(const ConvParams& p, const float* x, int n, int tin,
                          const float* weight, const float* bias, float* y);

}  // namespace jb
