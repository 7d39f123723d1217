// One transformer layer's decode step on the GPU, chained from the kernels of this folder
// exactly as the CPU engine's DecodeSession::extend does it (csrc/model/decode_session.cc):
//   x = ln_0(h); q|k|v = x . c_attn; store k, v; att = attention(q); a = att . c_proj;
//   x = ln_1(h + a); m = quick_gelu(x . mlp_fc) . mlp_proj; h = (h + a) + m
// Encoder-decoder layers (type 6) project only q; their caches hold the encoder's keys.
// Weights are fp16 (uploaded once), LayerNorm parameters and biases fp32.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace jb {
namespace cuda {

struct DevLinear {
  const __half* w = nullptr;  // (in, out), the original's Conv1D layout
  const float* b = nullptr;   // (out)
};

struct DevLayer {
  int attn_func = 0;
  const float *ln0_w = nullptr, *ln0_b = nullptr, *ln1_w = nullptr, *ln1_b = nullptr;
  DevLinear c_attn;  // (w, 3s), or (w, s) for type 6
  DevLinear c_proj;  // (s, w)
  DevLinear mlp_fc;  // (w, m)
  DevLinear mlp_proj;  // (m, w)
  __half* kc = nullptr;  // [sample][head][row][head_dim] (common/kv_layout.h)
  __half* vc = nullptr;
};

struct DevDims {
  int width = 0, state = 0, mlp = 0, heads = 1, len = 0, blocks = 1, prime_len = 0, enc_len = 0;
  float res_scale = 1.0f;
};

/** Device scratch for n samples: decode_scratch_floats(d, n, blocks_wanted) floats (any position). */
size_t decode_scratch_floats(const DevDims& d, int n, int blocks_wanted);

/**
 * h: n rows of width, updated in place for the position *pos, read from device memory when
 * the kernels run: nothing of the launch depends on the position (grids are sized for the
 * whole window, the KV row, the key run and the attention split count are derived on the
 * device), so a step captured once in a CUDA graph replays for every position (advance the
 * counter with advance_position, or write it). scratch as above.
 */
cudaError_t decode_layer_step(const DevLayer& l, const DevDims& d, const int32_t* pos, int n, float* h, float* scratch, int blocks_wanted,
                              cudaStream_t stream);

}  // namespace cuda
}  // namespace jb
