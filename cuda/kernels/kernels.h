// Host launchers of the CUDA kernels (one family per .cu file in this folder). Each runs on
// the given stream and returns the launch's cudaError_t; each has its CPU reference in
// ops_ref.h and a case in cuda/test/kernels_parity.cu.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "../../common/attn_index.h"

namespace jb {
namespace cuda {

/**
 * y (M x N) = x (M x K) . W + bias, W fp16 stored (K, N) (the original's Conv1D layout) or
 * (N, K) when transposed (nn.Linear, tied embeddings); fp32 activations and accumulation;
 * M <= 16. `work` holds gemv_workspace_floats(M, K, N, blocks_wanted) floats (may be null
 * when that is 0). blocks_wanted: about 2 x the device's SM count.
 */
size_t gemv_workspace_floats(int M, int K, int N, int blocks_wanted);
cudaError_t gemv_f16(const float* x, int M, int K, int N, const __half* w, bool transposed, const float* bias, float* y,
                     float* work, int blocks_wanted, cudaStream_t stream);

/** y = LayerNorm(x) * g + b per row of `width` (eps 1e-5); y may be x. */
cudaError_t layer_norm(const float* x, int rows, int width, const float* g, const float* b, float* y, cudaStream_t stream);

/** x = quick_gelu(x + bias) (bias may be null). */
cudaError_t bias_quick_gelu(float* x, const float* bias, int rows, int width, cudaStream_t stream);

/** out = a + b (out may be a or b). */
cudaError_t add(float* out, const float* a, const float* b, size_t n, cudaStream_t stream);

/** h = (h + a) + m, or h + res_scale * (a + m). */
cudaError_t residual(float* h, const float* a, const float* m, size_t n, float res_scale, cudaStream_t stream);

/**
 * Decode-step attention (kernels/attn_decode.cu): for each sample and head, the query at
 * `pos` (q: n rows of heads * dh, fp32, row stride ldq) over the rows kv_run(g, pos) of the fp16 caches
 * [sample][head][row][dh]; out: n rows of heads * dh. dh <= 512. The keys are split across
 * blocks when a run is long (flash-decoding, common/attn_decode_plan.h) and the partials
 * merged in a fixed order, in `work` (attn_decode_workspace_floats floats; null when that is 0).
 * The overloads taking `const int32_t* pos` read the position from device memory when the
 * kernels run (graph-safe: one capture serves every position); their workspace is
 * attn_decode_workspace_floats_max. Both give the same bits for the same position.
 */
int attn_decode_splits(const gpu::AttnGeom& g, int pos, int n, int heads, int blocks_wanted);
size_t attn_decode_workspace_floats(const gpu::AttnGeom& g, int pos, int n, int heads, int dh, int blocks_wanted);
size_t attn_decode_workspace_floats_max(const gpu::AttnGeom& g, int n, int heads, int dh, int blocks_wanted);
cudaError_t attn_decode(const gpu::AttnGeom& g, int pos, int n, int heads, int dh, const float* q, int ldq, const __half* kc,
                        const __half* vc, float* out, float* work, int blocks_wanted, cudaStream_t stream);
cudaError_t attn_decode(const gpu::AttnGeom& g, const int32_t* pos, int n, int heads, int dh, const float* q, int ldq, const __half* kc,
                        const __half* vc, float* out, float* work, int blocks_wanted, cudaStream_t stream);

/** Stores position pos's keys and values (n rows of heads * dh, stride ld) into the caches (kv_put_row). */
cudaError_t kv_store(const gpu::AttnGeom& g, int pos, int n, int heads, int dh, const float* k, const float* v, int ld, __half* kc,
                     __half* vc, cudaStream_t stream);
cudaError_t kv_store(const gpu::AttnGeom& g, const int32_t* pos, int n, int heads, int dh, const float* k, const float* v, int ld, __half* kc,
                     __half* vc, cudaStream_t stream);

/** *pos += 1 on the device: the last node of a captured decode step, so replays walk the window. */
cudaError_t advance_position(int32_t* pos, cudaStream_t stream);

/**
 * Prefill attention (kernels/attn_prefill.cu): queries [q_begin, q_end) of a window of
 * g.len positions, each over its visible key set (every type; enc-dec keys are the
 * g.enc_len encoder rows). q, k, v, out: fp32 rows of a sample's positions with strides
 * ldq/ldk/ldv/ldo (q|k|v of one GEMM output share a buffer), samples `*_sample` floats apart.
 * dh <= 512. Equals the engine's attention_forward / attention_ref row by row.
 */
struct PrefillIO {
  const float *q, *k, *v;
  float* out;
  int ldq, ldk, ldv, ldo;
  size_t q_sample, kv_sample, out_sample;
};
cudaError_t attn_prefill(const gpu::AttnGeom& g, int q_begin, int q_end, int n, int heads, int dh, const PrefillIO& io, cudaStream_t stream);

/**
 * VQ-VAE decoder convolutions (kernels/conv1d.cu), PyTorch Conv1d / ConvTranspose1d on NCT
 * fp32 tensors: weight (cout, cin, k), or (cin, cout, k) when transposed; tout from the
 * engine's ConvParams::out_len. relu_input applies ReLU to x as it is read; accumulate
 * computes y += scale * (conv + bias) instead of y = conv + bias (residual blocks).
 */
struct ConvShape {
  int cin = 0, cout = 0, kernel = 1, stride = 1, pad = 0, dilation = 1;
  bool transposed = false;
};
int conv_out_len(const ConvShape& c, int tin);
cudaError_t conv1d(const ConvShape& c, const float* x, int n, int tin, const float* w, const float* bias, float* y, bool relu_input,
                   bool accumulate, float scale, cudaStream_t stream);

/** out (n x width x t, NCT) = codebook rows of codes (n x t): the decoder's first input. */
cudaError_t dequantize(const int32_t* codes, int n, int t, const float* codebook, int bins, int width, float* out, cudaStream_t stream);

/** Sampling settings as the engine's (csrc/cpu/sampling.h): top_k and top_p never both set. */
struct Sampling {
  float temperature = 1.0f;
  int top_k = 0;
  float top_p = 0.0f;
};

/**
 * Draws one token per sample from logits (n x bins, bins <= 4096: every official vocabulary,
 * 1b_lyrics' 2127 tokens included) as the engine does (kernels/sampling.cu): temperature,
 * top-k or top-p filtering, softmax in double, and the CDF inverted in index order at the
 * sample's uniform. Uniforms: the engine's Philox draw for (seed, stream, sample_offset + b,
 * position), where position is read from device memory at position_dev when that is not
 * null (a captured graph then samples at whatever position the step is at).
 */
cudaError_t sample_tokens(const float* logits, int n, int bins, Sampling p, uint64_t seed, uint32_t stream_id, uint32_t sample_offset,
                          uint32_t position, int32_t* tokens, cudaStream_t stream, const int32_t* position_dev = nullptr);

}  // namespace cuda
}  // namespace jb
