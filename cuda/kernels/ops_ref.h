// Plain CPU references of the CUDA kernels in this folder, one per kernel, written to give
// exactly what the CPU engine's op gives (csrc/cpu/matmul.cc matmul_ref, csrc/model/
// transformer.cc layer_norm / quick_gelu / the residual sums): cuda/test/helpers_test.cc
// checks them against those ops on the CPU in CI, and the device parity test
// (cuda/test/kernels_parity.cu) checks each kernel against them on a GPU.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include <vector>

#include "../../common/half_convert.h"
#include "../../common/kv_layout.h"

namespace jb {
namespace gpu_ref {

/** fp16 bits -> fp32 for every half (a table: the references widen billions of weights). */
inline const float* half_table() {
  static const std::vector<float> t = [] {
    std::vector<float> v(65536);
    for (uint32_t h = 0; h < 65536; ++h) v[h] = gpu::half_to_float_bits(uint16_t(h));
    return v;
  }();
  return t.data();
}

/**
 * y[m][n] = sum_k x[m][k] W[k][n] + bias[n]; W fp16, stored (K, N), or (N, K) when transposed.
 * Each output is a double sum over k in order from the bias, exactly as matmul_ref (so the
 * same bits). W is walked in memory order, each fp16 row widened once for all M rows of x,
 * and the inner loops run over independent accumulators (n for (K, N), m for (N, K)), so
 * they vectorize or pipeline: ~1 ns per multiply-add on one core instead of 6-11 ns for the
 * column-by-column walk this replaced.
 */
inline void gemv_f16(const float* x, int M, int K, int N, const uint16_t* w, bool transposed, const float* bias, float* y) {
  if (M < 1 || N < 1) return;
  const float* h2f = half_table();
  if (transposed) {
    std::vector<float> row(size_t(K > 0 ? K : 1));
    std::vector<double> acc(static_cast<size_t>(M));
    for (int n = 0; n < N; ++n) {
      const uint16_t* wr = w + size_t(n) * K;
      for (int k = 0; k < K; ++k) row[size_t(k)] = h2f[wr[k]];
      for (int m = 0; m < M; ++m) acc[size_t(m)] = bias ? bias[n] : 0.0;
      for (int k = 0; k < K; ++k) {
        const double wk = row[size_t(k)];
        for (int m = 0; m < M; ++m) acc[size_t(m)] += double(x[size_t(m) * K + k]) * wk;
      }
      for (int m = 0; m < M; ++m) y[size_t(m) * N + n] = float(acc[size_t(m)]);
    }
    return;
  }
  std::vector<float> row(static_cast<size_t>(N));
  std::vector<double> acc(size_t(M) * N);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) acc[size_t(m) * N + n] = bias ? bias[n] : 0.0;
  for (int k = 0; k < K; ++k) {
    const uint16_t* wr = w + size_t(k) * N;
    float* r = row.data();
    for (int n = 0; n < N; ++n) r[n] = h2f[wr[n]];
    for (int m = 0; m < M; ++m) {
      const double xk = x[size_t(m) * K + k];
      double* a = acc.data() + size_t(m) * N;
      for (int n = 0; n < N; ++n) a[n] += xk * double(r[n]);
    }
  }
  for (size_t i = 0; i < acc.size(); ++i) y[i] = float(acc[i]);
}

/** torch LayerNorm (eps 1e-5, biased variance) as the engine computes it. */
inline void layer_norm(const float* x, int rows, int width, const float* g, const float* b, float* y) {
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + size_t(r) * width;
    float* yr = y + size_t(r) * width;
    double mean = 0;
    for (int i = 0; i < width; ++i) mean += xr[i];
    mean /= width;
    double var = 0;
    for (int i = 0; i < width; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= width;
    const double inv = 1.0 / std::sqrt(var + 1e-5);
    for (int i = 0; i < width; ++i) yr[i] = float((xr[i] - mean) * inv) * g[i] + b[i];
  }
}

/** x = quick_gelu(x + bias) per row (bias may be null): v * sigmoid(1.702 v). */
inline void bias_quick_gelu(float* x, const float* bias, int rows, int width) {
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < width; ++i) {
      float& v = x[size_t(r) * width + i];
      const float u = bias ? v + bias[i] : v;
      v = u * (1.0f / (1.0f + std::exp(-1.702f * u)));
    }
}

/** The block's residual: h = (h + a) + m, or h + s * (a + m) for res_scale s != 1. */
inline void residual(float* h, const float* a, const float* m, size_t n, float res_scale) {
  for (size_t i = 0; i < n; ++i) h[i] = res_scale == 1.0f ? (h[i] + a[i]) + m[i] : h[i] + res_scale * (a[i] + m[i]);
}

/**
 * Stores the new position's keys and values (k, v: n rows of heads * dh, row stride ld) in
 * fp16 head-major caches [sample][head][row][dh] at kv_put_row(g, pos) (nothing for enc-dec,
 * or past prime_len).
 */
inline void kv_store(const gpu::AttnGeom& g, int pos, int n, int heads, int dh, const float* k, const float* v, int ld,
                     uint16_t* kc, uint16_t* vc) {
  const int row = gpu::kv_put_row(g, pos), rows = gpu::kv_rows(g);
  if (row < 0) return;
  for (int b = 0; b < n; ++b)
    for (int h = 0; h < heads; ++h)
      for (int d = 0; d < dh; ++d) {
        const size_t at = gpu::kv_index(rows, heads, dh, b, h, row, d);
        kc[at] = gpu::float_to_half_rne(k[size_t(b) * ld + h * dh + d]);
        vc[at] = gpu::float_to_half_rne(v[size_t(b) * ld + h * dh + d]);
      }
}

/**
 * The enc-dec layers' caches, filled once per window from the lyric encoder's keys and
 * values (enc_len rows of heads * dh, stride ld, per sample): row j = encoder position j.
 * Also how the host prepares them for upload.
 */
inline void kv_fill_encoder(int enc_len, int n, int heads, int dh, const float* k, const float* v, int ld, uint16_t* kc, uint16_t* vc) {
  for (int b = 0; b < n; ++b)
    for (int j = 0; j < enc_len; ++j)
      for (int h = 0; h < heads; ++h)
        for (int d = 0; d < dh; ++d) {
          const size_t at = gpu::kv_index(enc_len, heads, dh, b, h, j, d);
          const size_t from = (size_t(b) * enc_len + j) * ld + h * dh + d;
          kc[at] = gpu::float_to_half_rne(k[from]);
          vc[at] = gpu::float_to_half_rne(v[from]);
        }
}

/**
 * One decode step's attention for the query at pos of each sample (q: n rows of heads * dh)
 * over the fp16 caches, as the engine's DecodeSession does it (decode_session.cc
 * attend_one): scores q.k * scale, softmax with the row maximum, weighted sum of values;
 * 0 where the run is empty (previous-row attention in block 0).
 */
inline void attend_decode(const gpu::AttnGeom& g, int pos, int n, int heads, int dh, const float* q, const uint16_t* kc,
                          const uint16_t* vc, float* out) {
  const gpu::KVRun run = gpu::kv_run(g, pos);
  const int rows = gpu::kv_rows(g), st = heads * dh;
  const float scale = gpu::attn_score_scale(dh);
  std::vector<float> w(run.count > 0 ? run.count : 1);
  for (int b = 0; b < n; ++b)
    for (int h = 0; h < heads; ++h) {
      float* o = out + size_t(b) * st + h * dh;
      for (int d = 0; d < dh; ++d) o[d] = 0.0f;
      if (run.zero_output || run.count == 0) continue;
      const float* qh = q + size_t(b) * st + h * dh;
      float mx = -INFINITY;
      for (int t = 0; t < run.count; ++t) {
        const size_t base = gpu::kv_index(rows, heads, dh, b, h, run.first_row + t, 0);
        float s = 0.0f;
        for (int d = 0; d < dh; ++d) s += qh[d] * gpu::half_to_float_bits(kc[base + d]);
        w[t] = s * scale;
        mx = w[t] > mx ? w[t] : mx;
      }
      float sum = 0.0f;
      for (int t = 0; t < run.count; ++t) sum += (w[t] = std::exp(w[t] - mx));
      const float inv = 1.0f / sum;
      for (int t = 0; t < run.count; ++t) {
        const size_t base = gpu::kv_index(rows, heads, dh, b, h, run.first_row + t, 0);
        for (int d = 0; d < dh; ++d) o[d] += w[t] * inv * gpu::half_to_float_bits(vc[base + d]);
      }
    }
}

/**
 * The decoder convolutions (kernels/conv1d.cu conv1d, both algorithms): PyTorch Conv1d
 * (w: cout, cin, kernel) or ConvTranspose1d (w: cin, cout, kernel) on NCT tensors, written as
 * the engine's conv1d_ref / conv_transpose1d_ref (csrc/cpu/conv1d_ref.cc): each output a
 * double sum from the bias over ci, then k, in order (so the same bits; the parity program
 * checks it), with the kernels' epilogue: ReLU on x as read, and y = y + scale * conv when
 * accumulating. tout: conv_out_len.
 */
inline long long conv_out_len(int kernel, int stride, int pad, int dilation, bool transposed, int tin) {
  const long long span = (long long)dilation * (kernel - 1);
  if (transposed) return ((long long)tin - 1) * stride - 2LL * pad + span + 1;
  const long long a = (long long)tin + 2LL * pad - span - 1;
  return (a >= 0 ? a / stride : -((-a + stride - 1) / stride)) + 1;
}
inline void conv1d(int cin, int cout, int kernel, int stride, int pad, int dilation, bool transposed, const float* x, int n, int tin,
                   const float* w, const float* bias, float* y, bool relu_input, bool accumulate, float scale) {
  const long long tout = conv_out_len(kernel, stride, pad, dilation, transposed, tin);
  for (int b = 0; b < n; ++b)
    for (int co = 0; co < cout; ++co)
      for (long long t = 0; t < tout; ++t) {
        double acc = bias ? bias[co] : 0.0;
        for (int ci = 0; ci < cin; ++ci)
          for (int k = 0; k < kernel; ++k) {
            long long s;
            if (!transposed) {
              s = t * stride + (long long)k * dilation - pad;
            } else {
              const long long num = t + pad - (long long)k * dilation;  // y[t] gathers x[s] with s*stride - pad + k*dil == t
              if (num < 0 || num % stride != 0) continue;
              s = num / stride;
            }
            if (s < 0 || s >= tin) continue;
            float xv = x[(size_t(b) * cin + ci) * tin + size_t(s)];
            if (relu_input && xv < 0.0f) xv = 0.0f;
            const float wv = transposed ? w[(size_t(ci) * cout + co) * kernel + k] : w[(size_t(co) * cin + ci) * kernel + k];
            acc += double(wv) * xv;
          }
        float& out = y[(size_t(b) * cout + co) * size_t(tout) + size_t(t)];
        out = accumulate ? out + scale * float(acc) : float(acc);
      }
}

/** The codebook lookup (kernels/conv1d.cu dequantize): out[b][c][i] = codebook[codes[b][i]][c]. */
inline void dequantize(const int32_t* codes, int n, int t, const float* codebook, int width, float* out) {
  for (int b = 0; b < n; ++b)
    for (int c = 0; c < width; ++c)
      for (int i = 0; i < t; ++i) out[(size_t(b) * width + c) * t + i] = codebook[size_t(codes[size_t(b) * t + i]) * width + c];
}

/** Host mirror of decode_layer.h's weights: fp16 matrices (in, out), fp32 vectors; caches fp16. */
struct HostLayer {
  int attn_func = 0;
  const float *ln0_w, *ln0_b, *ln1_w, *ln1_b;
  const uint16_t* c_attn_w;
  const float* c_attn_b;
  const uint16_t* c_proj_w;
  const float* c_proj_b;
  const uint16_t* mlp_fc_w;
  const float* mlp_fc_b;
  const uint16_t* mlp_proj_w;
  const float* mlp_proj_b;
  uint16_t* kc;
  uint16_t* vc;
};

/** The reference of decode_layer_step: the same chain with this file's references. */
inline void decode_layer_step(const HostLayer& l, int width, int state, int mlp, int heads, const gpu::AttnGeom& g, float res_scale,
                              int pos, int n, float* h) {
  const int w = width, s = state, dh = s / heads;
  const bool enc = l.attn_func == 6;
  const int ld = enc ? s : 3 * s;
  std::vector<float> x(size_t(n) * w), a(size_t(n) * w), qkv(size_t(n) * ld), att(size_t(n) * s), mid(size_t(n) * mlp), q(size_t(n) * s);
  layer_norm(h, n, w, l.ln0_w, l.ln0_b, x.data());
  gemv_f16(x.data(), n, w, ld, l.c_attn_w, false, l.c_attn_b, qkv.data());
  if (!enc) kv_store(g, pos, n, heads, dh, qkv.data() + s, qkv.data() + 2 * s, ld, l.kc, l.vc);
  for (int b = 0; b < n; ++b)
    for (int i = 0; i < s; ++i) q[size_t(b) * s + i] = qkv[size_t(b) * ld + i];
  attend_decode(g, pos, n, heads, dh, q.data(), l.kc, l.vc, att.data());
  gemv_f16(att.data(), n, s, w, l.c_proj_w, false, l.c_proj_b, a.data());
  for (size_t i = 0; i < x.size(); ++i) x[i] = h[i] + a[i];
  layer_norm(x.data(), n, w, l.ln1_w, l.ln1_b, x.data());
  gemv_f16(x.data(), n, w, mlp, l.mlp_fc_w, false, l.mlp_fc_b, mid.data());
  bias_quick_gelu(mid.data(), nullptr, n, mlp);
  gemv_f16(mid.data(), n, mlp, w, l.mlp_proj_w, false, l.mlp_proj_b, x.data());
  residual(h, a.data(), x.data(), size_t(n) * w, res_scale);
}


// ---- the model path's kernels (gemm.cu, gemv.cu dtypes, attn_chunk, kv_store_chunk, embed.cu)

/** bf16 bits -> fp32 (exact). */
inline float bf16_to_float_bits(uint16_t h) { return gpu::f32_from_bits(uint32_t(h) << 16); }

/** Element i of a weight array of dtype 0 (fp32), 1 (fp16) or 2 (bf16), as fp32. */
inline float weight_at(const void* w, int dtype, size_t i) {
  switch (dtype) {
    case 1: return gpu::half_to_float_bits(static_cast<const uint16_t*>(w)[i]);
    case 2: return bf16_to_float_bits(static_cast<const uint16_t*>(w)[i]);
    default: return static_cast<const float*>(w)[i];
  }
}

inline float quick_gelu(float u) { return u * (1.0f / (1.0f + std::exp(-1.702f * u))); }

/**
 * The reference of gemm() and gemv() for any weight dtype: y = x . W + bias (then quick-GELU
 * when gelu), W (K, N) or (N, K) when transposed; each output a double sum over k in order from
 * the bias, as matmul_ref (the engine's) computes it.
 */
inline void gemm_any(const float* x, int M, int K, int N, int ldx, const void* w, int dtype, bool transposed, const float* bias, float* y,
                     int ldy, bool gelu) {
  std::vector<double> acc(static_cast<size_t>(N));
  for (int m = 0; m < M; ++m) {
    for (int n = 0; n < N; ++n) acc[size_t(n)] = bias ? bias[n] : 0.0;
    for (int k = 0; k < K; ++k) {
      const double xk = x[size_t(m) * ldx + k];
      for (int n = 0; n < N; ++n) acc[size_t(n)] += xk * weight_at(w, dtype, transposed ? size_t(n) * K + k : size_t(k) * N + n);
    }
    for (int n = 0; n < N; ++n) {
      const float v = float(acc[size_t(n)]);
      y[size_t(m) * ldy + n] = gelu ? quick_gelu(v) : v;
    }
  }
}

/** v rounded to fp16 (nearest even) and back: what gemm_wmma stages into shared memory. */
inline float round_to_half(float v) { return gpu::half_to_float_bits(gpu::float_to_half_rne(v)); }

/**
 * The reference of gemm_wmma (kernels/gemm_wmma.cu): y = x^ . W^ + bias (then quick-GELU when
 * gelu), x^ and W^ the inputs rounded to fp16 (fp16 weights as stored; fp32 and bf16 weights
 * rounded to nearest even); W (K, N) or (N, K) when transposed. The products of halves are exact
 * (22 significant bits), each output their double sum over k in order, rounded to fp32, and
 * the bias added in fp32 afterwards, as the kernel's epilogue does: so the only difference
 * from the kernel is its fp32 (tensor-core) accumulation.
 */
inline void gemm_f16_inputs(const float* x, int M, int K, int N, int ldx, const void* w, int dtype, bool transposed, const float* bias, float* y,
                            int ldy, bool gelu) {
  if (M < 1 || N < 1) return;
  std::vector<float> wr(size_t(K) * N);  // W^ as (K, N)
  for (int k = 0; k < K; ++k)
    for (int n = 0; n < N; ++n) wr[size_t(k) * N + n] = round_to_half(weight_at(w, dtype, transposed ? size_t(n) * K + k : size_t(k) * N + n));
  std::vector<double> acc(static_cast<size_t>(N));
  for (int m = 0; m < M; ++m) {
    for (int n = 0; n < N; ++n) acc[size_t(n)] = 0.0;
    for (int k = 0; k < K; ++k) {
      const double xk = round_to_half(x[size_t(m) * ldx + k]);
      const float* r = wr.data() + size_t(k) * N;
      for (int n = 0; n < N; ++n) acc[size_t(n)] += xk * double(r[n]);
    }
    for (int n = 0; n < N; ++n) {
      const float v = float(acc[size_t(n)]) + (bias ? bias[n] : 0.0f);
      y[size_t(m) * ldy + n] = gelu ? quick_gelu(v) : v;
    }
  }
}

/** add_layer_norm: y = LayerNorm(h + a), the sum rounded to fp32 first. */
inline void add_layer_norm(const float* h, const float* a, int rows, int width, const float* g, const float* b, float* y) {
  std::vector<float> s(size_t(rows) * width);
  for (size_t i = 0; i < s.size(); ++i) s[i] = h[i] + a[i];
  layer_norm(s.data(), rows, width, g, b, y);
}

/** Cache element types of the references: float, or uint16_t fp16 bits. */
inline void cache_put(float* c, size_t at, float v) { c[at] = v; }
inline void cache_put(uint16_t* c, size_t at, float v) { c[at] = gpu::float_to_half_rne(v); }
inline float cache_get(const float* c, size_t at) { return c[at]; }
inline float cache_get(const uint16_t* c, size_t at) { return gpu::half_to_float_bits(c[at]); }
inline float round_as(float v, const float*) { return v; }
inline float round_as(float v, const uint16_t*) { return gpu::half_to_float_bits(gpu::float_to_half_rne(v)); }

/** kv_store of either cache type (positions stored one at a time, in order: the engine's put). */
template <typename T>
inline void kv_store_t(const gpu::AttnGeom& g, int pos, int n, int heads, int dh, const float* k, const float* v, int ld, T* kc, T* vc) {
  const int row = gpu::kv_put_row(g, pos), rows = gpu::kv_rows(g);
  if (row < 0) return;
  for (int b = 0; b < n; ++b)
    for (int h = 0; h < heads; ++h)
      for (int d = 0; d < dh; ++d) {
        const size_t at = gpu::kv_index(rows, heads, dh, b, h, row, d);
        cache_put(kc, at, k[size_t(b) * ld + h * dh + d]);
        cache_put(vc, at, v[size_t(b) * ld + h * dh + d]);
      }
}

/** kv_store_chunk: the chunk's positions stored one after another (the later wins a ring row). */
template <typename T>
inline void kv_store_chunk(const gpu::AttnGeom& g, int p0, int c, int n, int heads, int dh, const float* k, const float* v, int ld, T* kc,
                           T* vc) {
  if (g.func == gpu::kAttnEncDec) return;
  std::vector<float> kr(size_t(n) * heads * dh), vr(kr.size());
  const int st = heads * dh;
  for (int i = 0; i < c; ++i) {
    for (int b = 0; b < n; ++b)
      for (int e = 0; e < st; ++e) {
        kr[size_t(b) * st + e] = k[(size_t(b) * c + i) * ld + e];
        vr[size_t(b) * st + e] = v[(size_t(b) * c + i) * ld + e];
      }
    kv_store_t(g, p0 + i, n, heads, dh, kr.data(), vr.data(), st, kc, vc);
  }
}

/**
 * attn_chunk: queries [p0, p0 + c) (rows (b, i) of qkv, stride ld; k at koff, v at voff) over
 * their visible keys, j >= p0 from the rows (rounded as T), j < p0 from the cache, softmax with
 * the row maximum as the engine's attention_forward. probs: optional n x probs_len x keys of
 * head probs_head (only visible keys written).
 */
template <typename T>
inline void attn_chunk(const gpu::AttnGeom& g, int p0, int c, int n, int heads, int dh, const float* qkv, int ld, int koff, int voff,
                       const T* kc, const T* vc, float* out, int ldo, float* probs = nullptr, int probs_head = 0, int probs_len = 0) {
  const float scale = gpu::attn_score_scale(dh);
  const int rows = gpu::kv_rows(g), keys = gpu::attn_key_positions(g);
  std::vector<float> w(size_t(keys > 0 ? keys : 1)), kv(size_t(2 * dh));
  for (int b = 0; b < n; ++b)
    for (int i = 0; i < c; ++i)
      for (int h = 0; h < heads; ++h) {
        const int pos = p0 + i;
        const gpu::KeySpan span = gpu::visible_keys(g, pos);
        float* o = out + (size_t(b) * c + i) * ldo + size_t(h) * dh;
        for (int d = 0; d < dh; ++d) o[d] = 0.0f;
        const int count = span.zero_output ? 0 : span.count;
        if (count == 0) continue;
        const float* q = qkv + (size_t(b) * c + i) * ld + size_t(h) * dh;
        auto key = [&](int j, int d, bool value) -> float {
          if (g.func != gpu::kAttnEncDec && j >= p0)
            return round_as(qkv[(size_t(b) * c + (j - p0)) * ld + (value ? voff : koff) + size_t(h) * dh + d], kc);
          const int row = g.func == gpu::kAttnEncDec ? j : gpu::kv_put_row(g, j);
          return cache_get(value ? vc : kc, gpu::kv_index(rows, heads, dh, b, h, row, d));
        };
        float mx = -INFINITY;
        for (int t = 0; t < count; ++t) {
          float s = 0.0f;
          for (int d = 0; d < dh; ++d) s += q[d] * key(span.at(t), d, false);
          w[size_t(t)] = s * scale;
          mx = w[size_t(t)] > mx ? w[size_t(t)] : mx;
        }
        float sum = 0.0f;
        for (int t = 0; t < count; ++t) sum += (w[size_t(t)] = std::exp(w[size_t(t)] - mx));
        const float inv = 1.0f / sum;
        for (int t = 0; t < count; ++t) {
          const float p = w[size_t(t)] * inv;
          if (probs && h == probs_head) probs[(size_t(b) * probs_len + pos) * keys + span.at(t)] = p;
          for (int d = 0; d < dh; ++d) o[d] += p * key(span.at(t), d, true);
        }
      }
}

/**
 * embed (kernels/embed.cu): rows (b, i) of positions p = p0 + i as Autoregressive::embed:
 * (start-or-token row + pos_emb row) + x_cond row. Embeddings of any dtype, stored (rows, w).
 */
inline void embed(const void* x_emb, int x_dtype, const void* pos_emb, int p_dtype, const float* y_cond, const float* start, const float* x_cond,
                  int xc_len, const int32_t* tokens, int len, int w, int n, int c, int p0, float* h) {
  for (int b = 0; b < n; ++b)
    for (int i = 0; i < c; ++i) {
      const int p = p0 + i;
      const float* st = y_cond ? y_cond + size_t(b) * w : start;
      const float* xc = x_cond ? x_cond + (size_t(b) * xc_len + (xc_len == 1 ? 0 : p)) * w : nullptr;
      const int32_t tok = p > 0 ? tokens[size_t(b) * len + p - 1] : 0;
      for (int k = 0; k < w; ++k) {
        const float row = p == 0 ? st[k] : weight_at(x_emb, x_dtype, size_t(tok) * w + k);
        h[(size_t(b) * c + i) * w + k] = (row + weight_at(pos_emb, p_dtype, size_t(p) * w + k)) + (xc ? xc[k] : 0.0f);
      }
    }
}

}  // namespace gpu_ref
}  // namespace jb
