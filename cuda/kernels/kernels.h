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
/** The same for weights of `dtype` (wtype.cuh kWF32 / kWF16 / kWBF16 = jb_cuda_dtype); gelu:
 *  y = quick_gelu(x . W + bias) (the MLP's first product, fused). Same workspace. */
cudaError_t gemv(const float* x, int M, int K, int N, const void* w, int dtype, bool transposed, const float* bias, float* y, float* work,
                 int blocks_wanted, bool gelu, cudaStream_t stream);

/**
 * Tiled GEMM for many rows (kernels/gemm.cu: prefill, teacher-forced forward, the encoder's
 * keys): y (M x N, row stride ldy) = x (M x K, row stride ldx) . W + bias, optionally
 * quick-GELU; W of `dtype` stored (K, N) or (N, K) when transposed, widened to fp32 in shared
 * memory; fp32 arithmetic, each output summed over k in order (so a row's result does not
 * depend on M or on the other rows: a chunked prefill gives the bits of a one-pass one).
 */
cudaError_t gemm(const float* x, int M, int K, int N, int ldx, const void* w, int dtype, bool transposed, const float* bias, float* y,
                 int ldy, bool gelu, cudaStream_t stream);
/**
 * The tensor-core variant of gemm() (kernels/gemm_wmma.cu; opt-in, JUKEBOX_CUDA_PREFILL=tensor):
 * the same interface and layouts, but x and W rounded to fp16 as they are staged (fp16 weights
 * as stored), wmma products accumulated in fp32, the bias added in fp32. Outputs differ from
 * gemm()'s by up to ~2^-10 of sum_k |x w| (the inputs' rounding). Reference: gpu_ref::gemm_f16_inputs.
 */
cudaError_t gemm_wmma(const float* x, int M, int K, int N, int ldx, const void* w, int dtype, bool transposed, const float* bias, float* y,
                      int ldy, bool gelu, cudaStream_t stream);

/** y = LayerNorm(x) * g + b per row of `width` (eps 1e-5); y may be x. */
cudaError_t layer_norm(const float* x, int rows, int width, const float* g, const float* b, float* y, cudaStream_t stream);
/** y = LayerNorm(h + a) (the sum rounded as add() rounds it); y must not alias h or a. */
cudaError_t add_layer_norm(const float* h, const float* a, int rows, int width, const float* g, const float* b, float* y,
                           cudaStream_t stream);

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

/** The same over fp32 caches (kv_dtype F32: the CPU engine's cache values exactly). */
cudaError_t attn_decode(const gpu::AttnGeom& g, const int32_t* pos, int n, int heads, int dh, const float* q, int ldq, const float* kc,
                        const float* vc, float* out, float* work, int blocks_wanted, cudaStream_t stream);
cudaError_t attn_decode(const gpu::AttnGeom& g, int pos, int n, int heads, int dh, const float* q, int ldq, const float* kc,
                        const float* vc, float* out, float* work, int blocks_wanted, cudaStream_t stream);

/** Stores position pos's keys and values (n rows of heads * dh, stride ld) into the caches (kv_put_row). */
cudaError_t kv_store(const gpu::AttnGeom& g, int pos, int n, int heads, int dh, const float* k, const float* v, int ld, __half* kc,
                     __half* vc, cudaStream_t stream);
cudaError_t kv_store(const gpu::AttnGeom& g, const int32_t* pos, int n, int heads, int dh, const float* k, const float* v, int ld, __half* kc,
                     __half* vc, cudaStream_t stream);

cudaError_t kv_store(const gpu::AttnGeom& g, const int32_t* pos, int n, int heads, int dh, const float* k, const float* v, int ld, float* kc,
                     float* vc, cudaStream_t stream);
/**
 * Batched store of a chunk: positions [p0, p0 + c) of n samples, k/v row (b, i) at
 * (b * c + i) * ld. Where a ring cache (row: bc rows; previous-row: 2 bc) would receive two
 * positions of the chunk in one row, only the later is stored (the one a later query reads),
 * so no two threads write one element.
 */
cudaError_t kv_store_chunk(const gpu::AttnGeom& g, int p0, int c, int n, int heads, int dh, const float* k, const float* v, int ld,
                           float* kc, float* vc, cudaStream_t stream);
cudaError_t kv_store_chunk(const gpu::AttnGeom& g, int p0, int c, int n, int heads, int dh, const float* k, const float* v, int ld,
                           __half* kc, __half* vc, cudaStream_t stream);
/** Enc-dec caches from the projected encoder rows: row (b, j) of k/v at (b * enc_len + j) * ld. */
cudaError_t kv_fill_encoder(int enc_len, int n, int heads, int dh, const float* k, const float* v, int ld, float* kc, float* vc,
                            cudaStream_t stream);
cudaError_t kv_fill_encoder(int enc_len, int n, int heads, int dh, const float* k, const float* v, int ld, __half* kc, __half* vc,
                            cudaStream_t stream);

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
 * Attention of a chunk of positions [p0, p0 + c) against the KV cache (kernels/attn_prefill.cu
 * attn_chunk): the queries are the chunk's q rows (row (b, i) at (b * c + i) * ld, q at 0,
 * k at koff, v at voff); a visible key j >= p0 is read from the chunk's own rows (rounded as
 * the cache type rounds), j < p0 from the cache (kv_put_row(j); enc-dec: the encoder rows),
 * so a chunk may span blocks and equals the engine's DecodeSession::extend, which stores
 * each position and attends in order. Call it before kv_store_chunk of the same chunk (the
 * store may overwrite ring rows the chunk's earliest queries read). out: row (b, i) at
 * (b * c + i) * ldo. probs (optional): head probs_head's probabilities, row (b, p0 + i) of
 * n x probs_len x keys (zeros where invisible are the caller's: memset first).
 */
struct ChunkAttn {
  int p0 = 0, c = 0, n = 1, heads = 1, dh = 1;
  const float* qkv = nullptr;
  int ld = 0, koff = 0, voff = 0;
  float* out = nullptr;
  int ldo = 0;
  float* probs = nullptr;
  int probs_head = 0, probs_len = 0;
};
cudaError_t attn_chunk(const gpu::AttnGeom& g, const ChunkAttn& a, const float* kc, const float* vc, cudaStream_t stream);
cudaError_t attn_chunk(const gpu::AttnGeom& g, const ChunkAttn& a, const __half* kc, const __half* vc, cudaStream_t stream);

/**
 * The prior's input embeddings (kernels/embed.cu), rows (b, i) for positions p = base + i,
 * base = *base_dev when that is not null (the decode step: the position in device memory),
 * else p0: h = (start + pos_emb[p]) + x_cond row, start = y_cond[b] (or start_token) at p 0,
 * else x_emb[tokens[b][p - 1]], exactly as Autoregressive::embed. x_emb, pos_emb: stored
 * (rows, w) of their dtypes. x_cond: n x xc_len x w (xc_len len or 1), or null.
 */
struct EmbedArgs {
  const void* x_emb = nullptr;
  int x_emb_dtype = 0;
  const void* pos_emb = nullptr;
  int pos_emb_dtype = 0;
  const float* y_cond = nullptr;  // n x w, or null: start
  const float* start = nullptr;   // w
  const float* x_cond = nullptr;
  int xc_len = 0;
  const int32_t* tokens = nullptr;  // n x len
  int len = 0, w = 0;
};
cudaError_t embed(const EmbedArgs& e, int n, int c, int p0, const int32_t* base_dev, float* h, cudaStream_t stream);
/** h rows (b, i) += x_cond row of position base + i (add_cond_after). */
cudaError_t add_cond(const float* x_cond, int xc_len, int n, int c, int p0, const int32_t* base_dev, int w, float* h, cudaStream_t stream);
/**
 * The end of a decode step: tokens[b][*pos] = forced ? forced[b][*pos] : sampled[b], then
 * *pos += 1 (one launch; the graph's last node).
 */
cudaError_t commit_tokens(const int32_t* sampled, const int32_t* forced, int n, int len, int32_t* tokens, int32_t* pos, cudaStream_t stream);
/** rec[b][(*pos - base) % slots] = logits[b] (n x bins): step logits kept on the device. */
cudaError_t record_logits(const float* logits, int n, int bins, const int32_t* pos, int base, int slots, float* rec, cudaStream_t stream);

/**
 * VQ-VAE decoder convolutions (kernels/conv1d.cu), PyTorch Conv1d / ConvTranspose1d on NCT
 * fp32 tensors: weight (cout, cin, k), or (cin, cout, k) when transposed; tout from the
 * engine's ConvParams::out_len. relu_input applies ReLU to x as it is read; accumulate
 * computes y += scale * (conv + bias) instead of y = conv + bias (residual blocks). y must
 * not alias x. ConvAlgo::Auto takes the tiled implicit GEMM (conv_plan: the engine's phase
 * formulation, csrc/cpu/conv1d.h) unless cout <= 8 or the shape has more taps or phases
 * than a plan holds, then the direct kernel; Direct / Tiled force one (Tiled on a shape
 * conv_plan refuses: cudaErrorInvalidValue). Both accumulate in fp32 over k in order, so an
 * output does not depend on the length or tiling of the call (chunked decodes are exact).
 */
struct ConvShape {
  int cin = 0, cout = 0, kernel = 1, stride = 1, pad = 0, dilation = 1;
  bool transposed = false;
};
constexpr int kConvMaxTaps = 16;     // taps of one phase in a plan (kernel, or kernel / stride rounded up)
constexpr int kConvMaxPhases = 8;    // stride of a transposed conv in a plan
constexpr int kConvMaxSpan = 1 << 24;  // dilation * (kernel - 1), pad, stride: larger is refused
/** The implicit GEMM's phases: output t = q * out_stride + r of phase r reads x[q * in_stride +
 * tap_off[j]] with weight tap tap_k[j], j < ntaps. A plain conv is one phase. */
struct ConvPlan {
  int cin = 0, cout = 0, kernel = 1, transposed = 0;
  int in_stride = 1, out_stride = 1, nphase = 1;
  struct Phase {
    int ntaps = 0;
    int tap_off[kConvMaxTaps] = {};
    int tap_k[kConvMaxTaps] = {};
  } ph[kConvMaxPhases];
};
enum class ConvAlgo { Auto, Direct, Tiled };
/** Output length (PyTorch's formulas, output_padding 0), or -1 when it is < 0 or past an int. */
int conv_out_len(const ConvShape& c, int tin);
/** The tiled kernel's plan of c; false when c is invalid or does not fit a plan. */
bool conv_plan(const ConvShape& c, ConvPlan* out);
/** Multiply-adds x 2 actually performed (the engine's Conv1d::flops: taps per phase). */
double conv_flops(const ConvShape& c, int n, int tin);
cudaError_t conv1d(const ConvShape& c, const float* x, int n, int tin, const float* w, const float* bias, float* y, bool relu_input,
                   bool accumulate, float scale, cudaStream_t stream, ConvAlgo algo = ConvAlgo::Auto);

/** out (n x width x t, NCT) = codebook rows of codes (n x t): the decoder's first input.
 * Codes outside [0, bins) are clamped: the caller validates them (vqvae_decode does). */
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
