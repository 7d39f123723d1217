// The model-level prior path of the C ABI (include/jukebox_cuda.h, API version 2):
// prior_create uploads an autoregressive prior once (weights in the file's dtype, vectors
// fp32, KV caches and scratch for max_samples); prior_window runs one window of it as the CPU
// engine's DecodeSession + sample_window do (csrc/model/decode_session.cc), and
// prior_forward the teacher-forced forward (Autoregressive::forward, csrc/model/prior.cc).
//
// A window: upload its conditioning and prefix tokens; project the lyric encoder's output
// into the enc-dec layers' caches; prefill the prefix in chunks (tiled GEMMs, chunk attention
// against the caches, batched KV stores: kernels/gemm.cu, attn_prefill.cu, attn_decode.cu);
// then capture ONE decode step in a CUDA graph (embedding of the previous token read on the
// device, every layer, logits, sampling, the token written back and the position advanced:
// the position lives in device memory, so the graph replays for every position) and replay
// it once per token, synchronizing only every check_every tokens for progress and abort. No
// host round trip per token.
//
// Memory: everything a window needs is sized at create for max_samples and checked against
// cudaMemGetInfo's free bytes before anything is allocated; a window allocates nothing but
// its graph (a forward with attention probabilities also their host-visible output buffer).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "../../common/kv_layout.h"
#include "../kernels/kernels.h"
#include "../kernels/wtype.cuh"
#include "internal.h"

namespace {

constexpr size_t kAlign = 256;                    // every device tensor (weights need 16)
constexpr size_t kChunkScratchBudget = 256u << 20;  // prefill activations: chunks sized to fit
constexpr size_t kGraphReserve = 1u << 20;        // the decode graph's own device memory
constexpr int kRecordSlots = 64;                  // step logits kept on the device between reads
constexpr int kDefaultCheckEvery = 16;
constexpr int kGemvRows = 16;                     // gemv's batch limit: larger n runs in groups

size_t align_up(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

std::string mib(uint64_t bytes) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.1f MiB (%llu bytes)", double(bytes) / (1024.0 * 1024.0), (unsigned long long)bytes);
  return buf;
}

size_t dtype_size(int dt) { return dt == JB_CUDA_DTYPE_F32 ? 4 : 2; }

struct DevMat {
  const void* w = nullptr;
  int dtype = 0;
  int k = 0, n = 0;
  bool trans = false;
};

struct PLayer {
  int func = 0;
  jb::gpu::AttnGeom g;
  const float *ln0_w = nullptr, *ln0_b = nullptr, *ln1_w = nullptr, *ln1_b = nullptr;
  DevMat c_attn, c_enc_kv, c_proj, fc, proj;
  const float *c_attn_b = nullptr, *c_enc_kv_b = nullptr, *c_proj_b = nullptr, *fc_b = nullptr, *proj_b = nullptr;
  void* kc = nullptr;
  void* vc = nullptr;
};

// Device memory of a model is laid out by a plan first (sizes only, for the preflight), then
// allocated region by region; `Slot`s are offsets into their region.
struct Region {
  const char* what;
  size_t bytes = 0;
  char* ptr = nullptr;
  size_t take(size_t b) {
    const size_t at = bytes;
    bytes += align_up(b ? b : 1);
    return at;
  }
};

}  // namespace

struct jb_cuda_prior {
  jb_cuda_context* ctx = nullptr;
  std::string name;
  int w = 0, s = 0, mlp = 0, heads = 1, dh = 1, len = 0, blocks = 1, prime_len = 0, enc_len = 0, bins = 0, depth = 0, max_n = 1;
  int kv_dtype = JB_CUDA_DTYPE_F32;
  float res_scale = 1.0f;
  bool add_cond_after = false, encode_only = false, has_start = false, needs_enc = false;
  // JUKEBOX_CUDA_PREFILL=tensor (read once at prior_create): the prefill's products through the
  // tensor-core gemm_wmma (fp16 inputs; logits move by ~1e-3, tokens no longer the CPU's)
  bool tensor_prefill = false;
  int chunk = 1;  // positions per prefill chunk (scratch holds max_n x chunk rows)
  int blocks_wanted = 2;
  std::vector<PLayer> layers;
  DevMat x_emb, pos_emb, x_out;
  const float* start = nullptr;
  Region weights{"weights"}, caches{"KV caches"}, scratch{"scratch"};
  uint64_t total_bytes = 0;
  // scratch
  float *y_cond = nullptr, *x_cond = nullptr, *enc = nullptr;
  int32_t *tokens = nullptr, *forced = nullptr, *sampled = nullptr, *pos = nullptr;
  float *h = nullptr, *x = nullptr, *qkv = nullptr, *att = nullptr, *a = nullptr, *mid = nullptr, *logits = nullptr, *work = nullptr,
        *rec = nullptr;
};

namespace jb {
namespace cuda {

namespace {

#define JB_TRY(call)                             \
  do {                                           \
    const cudaError_t e_ = (call);               \
    if (e_ != cudaSuccess) return e_;            \
  } while (0)

std::string model_name(const jb_cuda_prior_desc* d) { return d && d->name && *d->name ? d->name : "a prior"; }

// ---- validation ------------------------------------------------------------------------

bool mat_ok(const jb_cuda_matrix& m, int k, int n, std::string& why, const std::string& what, bool may_be_absent = false) {
  if (!m.data) {
    if (may_be_absent) return true;
    why = what + " is missing";
    return false;
  }
  if (m.dtype != JB_CUDA_DTYPE_F32 && m.dtype != JB_CUDA_DTYPE_F16 && m.dtype != JB_CUDA_DTYPE_BF16) {
    why = what + " has an unknown dtype " + std::to_string(m.dtype);
    return false;
  }
  if (m.k != k || m.n != n) {
    why = what + " is (" + std::to_string(m.k) + ", " + std::to_string(m.n) + "); (" + std::to_string(k) + ", " + std::to_string(n) +
          ") expected";
    return false;
  }
  return true;
}

bool desc_ok(const jb_cuda_prior_desc* d, std::string& why) {
  if (!(d->width > 0 && d->state > 0 && d->mlp > 0 && d->heads > 0 && d->len > 0 && d->blocks > 0 && d->depth > 0 && d->bins > 0)) {
    why = "width, state, mlp, heads, len, blocks, depth and bins must be positive";
    return false;
  }
  if (d->state % d->heads != 0) {
    why = "state " + std::to_string(d->state) + " is not a multiple of heads " + std::to_string(d->heads);
    return false;
  }
  if (d->state / d->heads > 512) {
    why = "head width " + std::to_string(d->state / d->heads) + " is above the kernels' 512";
    return false;
  }
  if (d->len % d->blocks != 0) {
    why = "context " + std::to_string(d->len) + " is not a multiple of blocks " + std::to_string(d->blocks);
    return false;
  }
  if (d->prime_len < 0 || d->enc_len < 0) {
    why = "prime_len and enc_len must not be negative";
    return false;
  }
  if (d->max_samples < 1 || d->max_samples > 1024) {
    why = "max_samples " + std::to_string(d->max_samples) + " is outside [1, 1024]";
    return false;
  }
  if (d->kv_dtype != JB_CUDA_DTYPE_F32 && d->kv_dtype != JB_CUDA_DTYPE_F16) {
    why = "kv_dtype must be F32 or F16";
    return false;
  }
  if (!std::isfinite(d->res_scale)) {
    why = "res_scale is not finite";
    return false;
  }
  if (!d->layers) {
    why = "layers is null";
    return false;
  }
  const int w = d->width, s = d->state;
  if (!mat_ok(d->x_emb, d->bins, w, why, "x_emb") || !mat_ok(d->pos_emb, d->len, w, why, "pos_emb") ||
      !mat_ok(d->x_out, w, d->bins, why, "x_out", true))
    return false;
  if (d->x_emb.transposed || d->pos_emb.transposed) {
    why = "x_emb and pos_emb are passed as stored (rows, width), transposed = 0";
    return false;
  }
  if (d->x_out.data && d->bins > 4096) {
    why = "bins " + std::to_string(d->bins) + " is above the sampler's 4096";
    return false;
  }
  for (int i = 0; i < d->depth; ++i) {
    const jb_cuda_layer_desc& l = d->layers[i];
    const std::string at = "layer " + std::to_string(i) + ": ";
    if (!gpu::attn_func_supported(l.attn_func)) {
      why = at + "attention type " + std::to_string(l.attn_func) + " is not supported (0, 1, 2, 3, 6, 7)";
      return false;
    }
    if (!l.ln0_w || !l.ln0_b || !l.ln1_w || !l.ln1_b) {
      why = at + "a LayerNorm parameter is missing";
      return false;
    }
    const bool enc = l.attn_func == 6;
    if (enc && d->enc_len < 1) {
      why = at + "an encoder-decoder layer needs enc_len >= 1";
      return false;
    }
    if (!mat_ok(l.c_attn, w, enc ? s : 3 * s, why, at + "c_attn") || !mat_ok(l.c_proj, s, w, why, at + "c_proj") ||
        !mat_ok(l.mlp_fc, w, d->mlp, why, at + "mlp_fc") || !mat_ok(l.mlp_proj, d->mlp, w, why, at + "mlp_proj"))
      return false;
    if (enc && !mat_ok(l.c_enc_kv, w, 2 * s, why, at + "c_enc_kv")) return false;
  }
  return true;
}

// ---- layout ----------------------------------------------------------------------------

struct Plan {
  size_t weights = 0, caches = 0, scratch = 0;
  size_t total() const { return weights + caches + scratch + kGraphReserve; }
};

size_t mat_bytes(const jb_cuda_matrix& m) { return m.data ? size_t(m.k) * m.n * dtype_size(m.dtype) : 0; }

size_t work_floats(const jb_cuda_prior* p) {
  size_t wf = 1;
  auto mv = [&](const DevMat& m) {
    if (m.w && !m.trans) wf = std::max(wf, gemv_workspace_floats(kGemvRows, m.k, m.n, p->blocks_wanted));
  };
  bool seen[8] = {false};
  for (const PLayer& l : p->layers) {
    mv(l.c_attn);
    mv(l.c_proj);
    mv(l.fc);
    mv(l.proj);
    if (!seen[l.func]) {
      seen[l.func] = true;
      for (int n = 1; n <= p->max_n; ++n) wf = std::max(wf, attn_decode_workspace_floats_max(l.g, n, p->heads, p->dh, p->blocks_wanted));
    }
  }
  mv(p->x_out);
  return wf;
}

// Lays out (and, when allocate, points into) the three regions.
void lay_out(jb_cuda_prior* p, bool allocated) {
  auto at = [&](Region& r, size_t off) { return allocated ? r.ptr + off : nullptr; };
  Region sc{"scratch"};
  const size_t n = size_t(p->max_n), w = size_t(p->w), L = size_t(p->len);
  const size_t R = n * size_t(p->chunk);
  const size_t qkv_rows = std::max(R * 3 * p->s, n * size_t(p->enc_len) * 2 * p->s);
  const size_t o_y = sc.take(n * w * 4), o_xc = sc.take(n * L * w * 4), o_enc = sc.take(n * size_t(p->enc_len) * w * 4);
  const size_t o_tok = sc.take(n * L * 4), o_forced = sc.take(n * L * 4), o_sampled = sc.take(n * 4), o_pos = sc.take(4);
  const size_t o_h = sc.take(R * w * 4), o_x = sc.take(R * w * 4), o_qkv = sc.take(qkv_rows * 4), o_att = sc.take(R * p->s * 4);
  const size_t o_a = sc.take(R * w * 4), o_mid = sc.take(R * p->mlp * 4);
  const size_t o_logits = sc.take(p->encode_only ? 4 : R * p->bins * 4);
  const size_t o_work = sc.take(work_floats(p) * 4);
  const size_t o_rec = sc.take(p->encode_only ? 4 : n * kRecordSlots * p->bins * 4);
  p->scratch.bytes = sc.bytes;
  if (!allocated) return;
  Region& r = p->scratch;
  p->y_cond = reinterpret_cast<float*>(at(r, o_y));
  p->x_cond = reinterpret_cast<float*>(at(r, o_xc));
  p->enc = reinterpret_cast<float*>(at(r, o_enc));
  p->tokens = reinterpret_cast<int32_t*>(at(r, o_tok));
  p->forced = reinterpret_cast<int32_t*>(at(r, o_forced));
  p->sampled = reinterpret_cast<int32_t*>(at(r, o_sampled));
  p->pos = reinterpret_cast<int32_t*>(at(r, o_pos));
  p->h = reinterpret_cast<float*>(at(r, o_h));
  p->x = reinterpret_cast<float*>(at(r, o_x));
  p->qkv = reinterpret_cast<float*>(at(r, o_qkv));
  p->att = reinterpret_cast<float*>(at(r, o_att));
  p->a = reinterpret_cast<float*>(at(r, o_a));
  p->mid = reinterpret_cast<float*>(at(r, o_mid));
  p->logits = reinterpret_cast<float*>(at(r, o_logits));
  p->work = reinterpret_cast<float*>(at(r, o_work));
  p->rec = reinterpret_cast<float*>(at(r, o_rec));
}

size_t per_row_bytes(const jb_cuda_prior_desc* d) {
  return size_t(4) * (3 * size_t(d->width) + 4 * size_t(d->state) + d->mlp + (d->x_out.data ? d->bins : 0));
}

void free_regions(jb_cuda_prior* p) {
  for (Region* r : {&p->weights, &p->caches, &p->scratch})
    if (r->ptr) {
      cudaFree(r->ptr);
      r->ptr = nullptr;
    }
}

void destroy(jb_cuda_prior* p) {
  if (!p) return;
  cudaSetDevice(p->ctx->device);
  cudaStreamSynchronize(p->ctx->stream);
  free_regions(p);
  {
    std::lock_guard<std::mutex> lock(p->ctx->mutex);
    p->ctx->priors.erase(p);
    p->ctx->bytes -= p->total_bytes;
  }
  delete p;
}

// ---- the chains ------------------------------------------------------------------------

cudaError_t mv(const jb_cuda_prior* p, const float* x, int rows, const DevMat& m, const float* bias, float* y, bool gelu, cudaStream_t st) {
  for (int r0 = 0; r0 < rows; r0 += kGemvRows) {
    const int mr = std::min(kGemvRows, rows - r0);
    JB_TRY(gemv(x + size_t(r0) * m.k, mr, m.k, m.n, m.w, m.dtype, m.trans, bias, y + size_t(r0) * m.n, p->work, p->blocks_wanted, gelu, st));
  }
  return cudaSuccess;
}

cudaError_t mm(const float* x, int rows, const DevMat& m, const float* bias, float* y, bool gelu, cudaStream_t st) {
  return gemm(x, rows, m.k, m.n, m.k, m.w, m.dtype, m.trans, bias, y, m.n, gelu, st);
}

// The prefill's products (run_chunk): the fp32 GEMM, or the opt-in tensor-core one.
cudaError_t mm_prefill(const jb_cuda_prior* p, const float* x, int rows, const DevMat& m, const float* bias, float* y, bool gelu,
                       cudaStream_t st) {
  if (p->tensor_prefill) return gemm_wmma(x, rows, m.k, m.n, m.k, m.w, m.dtype, m.trans, bias, y, m.n, gelu, st);
  return mm(x, rows, m, bias, y, gelu, st);
}

EmbedArgs embed_args(const jb_cuda_prior* p, bool y_cond, int xc_len) {
  EmbedArgs e;
  e.x_emb = p->x_emb.w;
  e.x_emb_dtype = p->x_emb.dtype;
  e.pos_emb = p->pos_emb.w;
  e.pos_emb_dtype = p->pos_emb.dtype;
  e.y_cond = y_cond ? p->y_cond : nullptr;
  e.start = p->start;
  e.x_cond = xc_len > 0 ? p->x_cond : nullptr;
  e.xc_len = xc_len;
  e.tokens = p->tokens;
  e.len = p->len;
  e.w = p->w;
  return e;
}

template <typename T>
cudaError_t chunk_attention(const PLayer& l, const ChunkAttn& ca, cudaStream_t st) {
  return attn_chunk(l.g, ca, static_cast<const T*>(l.kc), static_cast<const T*>(l.vc), st);
}

// Positions [p0, p0 + c) of n samples through every layer (DecodeSession::extend with the
// batched products of forward_prefix). out_logits: h -> (add_cond) -> x_out into p->logits
// (or, encode-only, h is the output). probs: attention probabilities of one layer's head.
cudaError_t run_chunk(jb_cuda_prior* p, int n, int p0, int c, bool y_cond, int xc_len, bool out_logits, int probs_layer, int probs_head,
                      float* probs) {
  cudaStream_t st = p->ctx->stream;
  const int R = n * c, w = p->w, s = p->s;
  JB_TRY(embed(embed_args(p, y_cond, xc_len), n, c, p0, nullptr, p->h, st));
  for (int li = 0; li < p->depth; ++li) {
    const PLayer& l = p->layers[li];
    const bool enc = l.func == 6;
    const int ld = enc ? s : 3 * s;
    JB_TRY(layer_norm(p->h, R, w, l.ln0_w, l.ln0_b, p->x, st));
    JB_TRY(mm_prefill(p, p->x, R, l.c_attn, l.c_attn_b, p->qkv, false, st));
    ChunkAttn ca;
    ca.p0 = p0;
    ca.c = c;
    ca.n = n;
    ca.heads = p->heads;
    ca.dh = p->dh;
    ca.qkv = p->qkv;
    ca.ld = ld;
    ca.koff = s;
    ca.voff = 2 * s;
    ca.out = p->att;
    ca.ldo = s;
    if (li == probs_layer) {
      ca.probs = probs;
      ca.probs_head = probs_head;
      ca.probs_len = p->len;
    }
    if (p->kv_dtype == JB_CUDA_DTYPE_F32) {
      JB_TRY(chunk_attention<float>(l, ca, st));
      if (!enc)
        JB_TRY(kv_store_chunk(l.g, p0, c, n, p->heads, p->dh, p->qkv + s, p->qkv + 2 * s, ld, static_cast<float*>(l.kc), static_cast<float*>(l.vc), st));
    } else {
      JB_TRY(chunk_attention<__half>(l, ca, st));
      if (!enc)
        JB_TRY(kv_store_chunk(l.g, p0, c, n, p->heads, p->dh, p->qkv + s, p->qkv + 2 * s, ld, static_cast<__half*>(l.kc), static_cast<__half*>(l.vc), st));
    }
    JB_TRY(mm_prefill(p, p->att, R, l.c_proj, l.c_proj_b, p->a, false, st));
    JB_TRY(add_layer_norm(p->h, p->a, R, w, l.ln1_w, l.ln1_b, p->x, st));
    JB_TRY(mm_prefill(p, p->x, R, l.fc, l.fc_b, p->mid, true, st));
    JB_TRY(mm_prefill(p, p->mid, R, l.proj, l.proj_b, p->x, false, st));
    JB_TRY(residual(p->h, p->a, p->x, size_t(R) * w, p->res_scale, st));
  }
  if (!out_logits) return cudaSuccess;
  if (p->add_cond_after && xc_len > 0) JB_TRY(add_cond(p->x_cond, xc_len, n, c, p0, nullptr, w, p->h, st));
  if (!p->encode_only) JB_TRY(mm_prefill(p, p->h, R, p->x_out, nullptr, p->logits, false, st));
  return cudaSuccess;
}

struct StepConfig {
  int n = 1;
  bool y_cond = false;
  int xc_len = 0;
  bool forced = false;
  bool record = false;
  int record_base = 0;
  Sampling sampling;
  uint64_t seed = 0;
  uint32_t stream_id = 0, sample_offset = 0;
};

// One decode step at *p->pos (the graph's body): DecodeSession::step + sample_window's draw.
cudaError_t enqueue_step(jb_cuda_prior* p, const StepConfig& sc) {
  cudaStream_t st = p->ctx->stream;
  const int n = sc.n, w = p->w, s = p->s;
  const int32_t* pos = p->pos;
  JB_TRY(embed(embed_args(p, sc.y_cond, sc.xc_len), n, 1, 0, pos, p->h, st));
  for (const PLayer& l : p->layers) {
    const bool enc = l.func == 6;
    const int ld = enc ? s : 3 * s;
    JB_TRY(layer_norm(p->h, n, w, l.ln0_w, l.ln0_b, p->x, st));
    JB_TRY(mv(p, p->x, n, l.c_attn, l.c_attn_b, p->qkv, false, st));
    if (p->kv_dtype == JB_CUDA_DTYPE_F32) {
      float* kc = static_cast<float*>(l.kc);
      float* vc = static_cast<float*>(l.vc);
      if (!enc) JB_TRY(kv_store(l.g, pos, n, p->heads, p->dh, p->qkv + s, p->qkv + 2 * s, ld, kc, vc, st));
      JB_TRY(attn_decode(l.g, pos, n, p->heads, p->dh, p->qkv, ld, static_cast<const float*>(kc), static_cast<const float*>(vc), p->att, p->work,
                         p->blocks_wanted, st));
    } else {
      __half* kc = static_cast<__half*>(l.kc);
      __half* vc = static_cast<__half*>(l.vc);
      if (!enc) JB_TRY(kv_store(l.g, pos, n, p->heads, p->dh, p->qkv + s, p->qkv + 2 * s, ld, kc, vc, st));
      JB_TRY(attn_decode(l.g, pos, n, p->heads, p->dh, p->qkv, ld, static_cast<const __half*>(kc), static_cast<const __half*>(vc), p->att,
                         p->work, p->blocks_wanted, st));
    }
    JB_TRY(mv(p, p->att, n, l.c_proj, l.c_proj_b, p->a, false, st));
    JB_TRY(add_layer_norm(p->h, p->a, n, w, l.ln1_w, l.ln1_b, p->x, st));
    JB_TRY(mv(p, p->x, n, l.fc, l.fc_b, p->mid, true, st));
    JB_TRY(mv(p, p->mid, n, l.proj, l.proj_b, p->x, false, st));
    JB_TRY(residual(p->h, p->a, p->x, size_t(n) * w, p->res_scale, st));
  }
  if (p->add_cond_after && sc.xc_len > 0) JB_TRY(add_cond(p->x_cond, sc.xc_len, n, 1, 0, pos, w, p->h, st));
  JB_TRY(mv(p, p->h, n, p->x_out, nullptr, p->logits, false, st));
  if (sc.record) JB_TRY(record_logits(p->logits, n, p->bins, pos, sc.record_base, kRecordSlots, p->rec, st));
  if (!sc.forced)
    JB_TRY(sample_tokens(p->logits, n, p->bins, sc.sampling, sc.seed, sc.stream_id, sc.sample_offset, 0, p->sampled, st, pos));
  JB_TRY(commit_tokens(sc.forced ? nullptr : p->sampled, sc.forced ? p->forced : nullptr, n, p->len, p->tokens, p->pos, st));
  return cudaSuccess;
}

// ---- the job helpers -------------------------------------------------------------------

cudaError_t upload(void* dst, const void* src, size_t bytes, cudaStream_t st) {
  if (!bytes) return cudaSuccess;
  return cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, st);
}

// Conditioning shared by windows and forwards: y_cond, x_cond, the encoder's keys.
int upload_conditioning(jb_cuda_prior* p, int n, const float* y_cond, const float* x_cond, int xc_len, const float* encoder_kv,
                        const char* job) {
  cudaStream_t st = p->ctx->stream;
  const size_t w = size_t(p->w);
  cudaError_t e = cudaSuccess;
  if (y_cond) e = upload(p->y_cond, y_cond, size_t(n) * w * 4, st);
  if (e == cudaSuccess && x_cond) e = upload(p->x_cond, x_cond, size_t(n) * xc_len * w * 4, st);
  if (e == cudaSuccess && p->needs_enc) {
    e = upload(p->enc, encoder_kv, size_t(n) * p->enc_len * w * 4, st);
    // The encoder's keys/values, projected once per job (DecodeSession's constructor).
    for (const PLayer& l : p->layers) {
      if (e != cudaSuccess || l.func != 6) continue;
      const int rows = n * p->enc_len, s = p->s;
      e = mm(p->enc, rows, l.c_enc_kv, l.c_enc_kv_b, p->qkv, false, st);
      if (e != cudaSuccess) break;
      if (p->kv_dtype == JB_CUDA_DTYPE_F32)
        e = kv_fill_encoder(p->enc_len, n, p->heads, p->dh, p->qkv, p->qkv + s, 2 * s, static_cast<float*>(l.kc), static_cast<float*>(l.vc), st);
      else
        e = kv_fill_encoder(p->enc_len, n, p->heads, p->dh, p->qkv, p->qkv + s, 2 * s, static_cast<__half*>(l.kc), static_cast<__half*>(l.vc), st);
    }
  }
  if (e != cudaSuccess) return fail_cuda(e, std::string(job) + " of " + p->name + ": uploading the conditioning");
  return JB_CUDA_OK;
}

std::string check_tokens(const int32_t* t, int n, int len, int from, int to, int bins, const char* what) {
  for (int b = 0; b < n; ++b)
    for (int i = from; i < to; ++i) {
      const int32_t v = t[size_t(b) * len + i];
      if (v < 0 || v >= bins)
        return std::string(what) + " " + std::to_string(v) + " (sample " + std::to_string(b) + ", position " + std::to_string(i) +
               ") is outside [0, " + std::to_string(bins) + ")";
    }
  return "";
}

// Device rows (b, i) of a chunk (stride cols) -> host rows of n x total x cols at position p0.
cudaError_t download_rows(float* host, const float* dev, int n, int c, int p0, int total, int cols, cudaStream_t st) {
  for (int b = 0; b < n; ++b) {
    const cudaError_t e = cudaMemcpyAsync(host + (size_t(b) * total + p0) * cols, dev + size_t(b) * c * cols, size_t(c) * cols * 4,
                                          cudaMemcpyDeviceToHost, st);
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

// Runs [0, count) in chunks of `chunk`, with the host outputs and a progress call per chunk.
int run_prefix(jb_cuda_prior* p, int n, int count, int chunk, bool y_cond, int xc_len, float* out, int out_total, int probs_layer,
               int probs_head, float* probs, jb_cuda_progress_fn progress, void* user, double done0, double total, const char* job) {
  cudaStream_t st = p->ctx->stream;
  const int cols = p->encode_only ? p->w : p->bins;
  for (int p0 = 0; p0 < count; p0 += chunk) {
    const int c = std::min(chunk, count - p0);
    cudaError_t e = run_chunk(p, n, p0, c, y_cond, xc_len, out != nullptr, probs_layer, probs_head, probs);
    if (e == cudaSuccess && out) e = download_rows(out, p->encode_only ? p->h : p->logits, n, c, p0, out_total, cols, st);
    if (e == cudaSuccess) e = cudaStreamSynchronize(st);
    if (e != cudaSuccess) return fail_cuda(e, std::string(job) + " of " + p->name + ": positions [" + std::to_string(p0) + ", " + std::to_string(p0 + c) + ")");
    if (progress && progress(user, done0 + p0 + c, total))
      return fail(JB_CUDA_ERR_ABORTED, std::string(job) + " of " + p->name + ": aborted at position " + std::to_string(p0 + c));
  }
  return JB_CUDA_OK;
}

}  // namespace

bool prior_model_implemented() { return true; }

int prior_create(jb_cuda_context* ctx, const jb_cuda_prior_desc* d, jb_cuda_prior** out) {
  clear_error();
  if (out) *out = nullptr;
  if (!ctx || !d || !out) return fail(JB_CUDA_ERR_INVALID_ARGUMENT, "prior_create: null context, description or output");
  const std::string name = model_name(d);
  std::string why;
  if (!desc_ok(d, why)) return fail(JB_CUDA_ERR_INVALID_ARGUMENT, "prior_create(" + name + "): " + why);
  std::lock_guard<std::mutex> job(ctx->job);
  cudaError_t e = cudaSetDevice(ctx->device);
  if (e != cudaSuccess) return fail_cuda(e, "prior_create(" + name + "): selecting CUDA device " + std::to_string(ctx->device));
  jb_cuda_prior* p = new (std::nothrow) jb_cuda_prior;
  if (!p) return fail(JB_CUDA_ERR_OUT_OF_MEMORY, "prior_create(" + name + "): out of host memory");
  try {
    p->ctx = ctx;
    p->name = name;
    {
      const char* mode = std::getenv("JUKEBOX_CUDA_PREFILL");
      p->tensor_prefill = mode && std::strcmp(mode, "tensor") == 0;
    }
    p->w = d->width;
    p->s = d->state;
    p->mlp = d->mlp;
    p->heads = d->heads;
    p->dh = d->state / d->heads;
    p->len = d->len;
    p->blocks = d->blocks;
    p->prime_len = d->prime_len;
    p->enc_len = d->enc_len;
    p->bins = d->bins;
    p->depth = d->depth;
    p->max_n = d->max_samples;
    p->kv_dtype = d->kv_dtype;
    p->res_scale = d->res_scale;
    p->add_cond_after = d->add_cond_after != 0;
    p->encode_only = d->x_out.data == nullptr;
    p->has_start = d->start_token != nullptr;
    // Blocks the GEMV and the decode attention aim for (their split-K / flash-decoding plans).
    // Under emulation a split only adds threads to run one after another (the parity program
    // covers the split paths), so the emulated decode step runs unsplit.
#if defined(JB_CUDA_EMULATED)
    p->blocks_wanted = 1;
#else
    p->blocks_wanted = 2 * std::max(1, ctx->multiprocessors);
#endif
    const size_t rows = std::max<size_t>(1, kChunkScratchBudget / (size_t(p->max_n) * per_row_bytes(d)));
    p->chunk = int(std::min<size_t>(size_t(p->len), rows));

    // The plan: weights (matrices in their dtype, then fp32 vectors), caches, scratch.
    Region& W = p->weights;
    struct Copy {
      size_t off;
      const void* src;
      size_t bytes;
    };
    std::vector<Copy> copies;
    std::vector<std::vector<unsigned char>> relaid;  // host copies of transposed matrices, until uploaded
    auto put_mat = [&](const jb_cuda_matrix& m, DevMat& dm) -> size_t {
      dm.dtype = m.dtype;
      dm.k = m.k;
      dm.n = m.n;
      dm.trans = false;
      if (!m.data) return size_t(-1);
      const size_t off = W.take(mat_bytes(m));
      if (!m.transposed) {
        copies.push_back({off, m.data, mat_bytes(m)});
        return off;
      }
      // (N, K) matrices (x_out) are stored (K, N) on the device: the decode GEMV's (K, N)
      // kernel reads each k's weights as one coalesced run of pairs, where the (N, K) one has a
      // warp per output (and, under emulation, 32 threads per logit: most of a step's cost).
      const size_t es = dtype_size(m.dtype);
      relaid.emplace_back(mat_bytes(m));
      unsigned char* dst = relaid.back().data();
      const unsigned char* src = static_cast<const unsigned char*>(m.data);
      for (int j = 0; j < m.n; ++j)
        for (int i = 0; i < m.k; ++i) std::memcpy(dst + (size_t(i) * m.n + j) * es, src + (size_t(j) * m.k + i) * es, es);
      copies.push_back({off, dst, mat_bytes(m)});
      return off;
    };
    auto put_vec = [&](const float* v, size_t count) -> size_t {
      if (!v) return size_t(-1);
      const size_t off = W.take(count * 4);
      copies.push_back({off, v, count * 4});
      return off;
    };
    struct LayerOffsets {
      size_t ln[4], c_attn, c_enc_kv, c_proj, fc, proj, b_attn, b_enc, b_proj, b_fc, b_mproj;
    };
    std::vector<LayerOffsets> lo(size_t(d->depth));
    p->layers.resize(size_t(d->depth));
    const int w = d->width, s = d->state;
    for (int i = 0; i < d->depth; ++i) {
      const jb_cuda_layer_desc& l = d->layers[i];
      PLayer& pl = p->layers[i];
      const bool enc = l.attn_func == 6;
      pl.func = l.attn_func;
      pl.g.func = l.attn_func;
      pl.g.len = d->len;
      pl.g.block_ctx = d->len / d->blocks;
      pl.g.prime_len = d->prime_len;
      pl.g.enc_len = d->enc_len;
      LayerOffsets& o = lo[size_t(i)];
      o.ln[0] = put_vec(l.ln0_w, w);
      o.ln[1] = put_vec(l.ln0_b, w);
      o.ln[2] = put_vec(l.ln1_w, w);
      o.ln[3] = put_vec(l.ln1_b, w);
      o.c_attn = put_mat(l.c_attn, pl.c_attn);
      o.b_attn = put_vec(l.c_attn_b, enc ? s : 3 * s);
      o.c_enc_kv = enc ? put_mat(l.c_enc_kv, pl.c_enc_kv) : size_t(-1);
      o.b_enc = enc ? put_vec(l.c_enc_kv_b, 2 * s) : size_t(-1);
      o.c_proj = put_mat(l.c_proj, pl.c_proj);
      o.b_proj = put_vec(l.c_proj_b, w);
      o.fc = put_mat(l.mlp_fc, pl.fc);
      o.b_fc = put_vec(l.mlp_fc_b, d->mlp);
      o.proj = put_mat(l.mlp_proj, pl.proj);
      o.b_mproj = put_vec(l.mlp_proj_b, w);
      if (enc) p->needs_enc = true;
    }
    const size_t o_xemb = put_mat(d->x_emb, p->x_emb), o_pos = put_mat(d->pos_emb, p->pos_emb), o_xout = put_mat(d->x_out, p->x_out);
    const size_t o_start = put_vec(d->start_token, w);
    // caches: [sample][head][row][dh] per layer, for max_samples
    std::vector<std::pair<size_t, size_t>> cache_off(size_t(d->depth));
    const size_t el = dtype_size(d->kv_dtype);
    for (int i = 0; i < d->depth; ++i) {
      const size_t count = gpu::kv_elements(p->layers[i].g, p->max_n, p->heads, p->dh);
      cache_off[size_t(i)].first = p->caches.take(count * el);
      cache_off[size_t(i)].second = p->caches.take(count * el);
    }
    // scratch needs the matrices' shapes (the GEMV workspace): point them at nothing yet
    for (int i = 0; i < d->depth; ++i) {
      PLayer& pl = p->layers[i];
      for (DevMat* m : {&pl.c_attn, &pl.c_proj, &pl.fc, &pl.proj}) m->w = reinterpret_cast<const void*>(1);
    }
    if (d->x_out.data) p->x_out.w = reinterpret_cast<const void*>(1);
    lay_out(p, false);

    // Preflight: everything against the device's free memory before any allocation.
    const uint64_t need = p->weights.bytes + p->caches.bytes + p->scratch.bytes + kGraphReserve;
    size_t free_b = 0, total_b = 0;
    e = cudaMemGetInfo(&free_b, &total_b);
    if (e != cudaSuccess) {
      delete p;
      return fail_cuda(e, "prior_create(" + name + "): cudaMemGetInfo");
    }
    if (need > free_b) {
      const std::string msg = "out of GPU memory for " + name + ": it needs " + mib(need) + " (weights " + mib(p->weights.bytes) +
                              ", KV caches for " + std::to_string(p->max_n) + " samples " + mib(p->caches.bytes) + ", scratch " +
                              mib(p->scratch.bytes + kGraphReserve) + ") and " + ctx->device_name + " has " + mib(free_b) + " free of " +
                              mib(total_b);
      delete p;
      return fail(JB_CUDA_ERR_OUT_OF_MEMORY, msg);
    }
    for (Region* r : {&p->weights, &p->caches, &p->scratch}) {
      void* ptr = nullptr;
      e = cudaMalloc(&ptr, r->bytes ? r->bytes : 1);
      if (e != cudaSuccess) {
        (void)cudaGetLastError();
        free_regions(p);
        size_t f2 = 0, t2 = 0;
        cudaMemGetInfo(&f2, &t2);
        const std::string msg = "out of GPU memory for " + name + ": allocating its " + r->what + " (" + mib(r->bytes) + " of the " + mib(need) +
                                " it needs) failed on " + ctx->device_name + " (" + mib(f2) + " free): " + cudaGetErrorString(e);
        delete p;
        return fail(e == cudaErrorMemoryAllocation ? JB_CUDA_ERR_OUT_OF_MEMORY : JB_CUDA_ERR_CUDA, msg);
      }
      r->ptr = static_cast<char*>(ptr);
    }
    // Point everything into the regions and upload.
    char* wb = p->weights.ptr;
    auto vec = [&](size_t off) -> const float* { return off == size_t(-1) ? nullptr : reinterpret_cast<const float*>(wb + off); };
    auto mat = [&](size_t off) -> const void* { return off == size_t(-1) ? nullptr : wb + off; };
    for (int i = 0; i < d->depth; ++i) {
      PLayer& pl = p->layers[i];
      const LayerOffsets& o = lo[size_t(i)];
      pl.ln0_w = vec(o.ln[0]);
      pl.ln0_b = vec(o.ln[1]);
      pl.ln1_w = vec(o.ln[2]);
      pl.ln1_b = vec(o.ln[3]);
      pl.c_attn.w = mat(o.c_attn);
      pl.c_attn_b = vec(o.b_attn);
      pl.c_enc_kv.w = mat(o.c_enc_kv);
      pl.c_enc_kv_b = vec(o.b_enc);
      pl.c_proj.w = mat(o.c_proj);
      pl.c_proj_b = vec(o.b_proj);
      pl.fc.w = mat(o.fc);
      pl.fc_b = vec(o.b_fc);
      pl.proj.w = mat(o.proj);
      pl.proj_b = vec(o.b_mproj);
      pl.kc = p->caches.ptr + cache_off[size_t(i)].first;
      pl.vc = p->caches.ptr + cache_off[size_t(i)].second;
    }
    p->x_emb.w = mat(o_xemb);
    p->pos_emb.w = mat(o_pos);
    p->x_out.w = mat(o_xout);
    p->start = vec(o_start);
    lay_out(p, true);
    for (const Copy& c : copies) {
      e = cudaMemcpyAsync(wb + c.off, c.src, c.bytes, cudaMemcpyHostToDevice, ctx->stream);
      if (e != cudaSuccess) break;
    }
    if (e == cudaSuccess) e = cudaStreamSynchronize(ctx->stream);
    if (e != cudaSuccess) {
      free_regions(p);
      delete p;
      return fail_cuda(e, "prior_create(" + name + "): uploading the weights");
    }
    p->total_bytes = p->weights.bytes + p->caches.bytes + p->scratch.bytes;
    {
      std::lock_guard<std::mutex> lock(ctx->mutex);
      ctx->priors.insert(p);
      ctx->bytes += p->total_bytes;
    }
    *out = p;
    return JB_CUDA_OK;
  } catch (const std::bad_alloc&) {
    free_regions(p);
    delete p;
    return fail(JB_CUDA_ERR_OUT_OF_MEMORY, "prior_create(" + name + "): out of host memory");
  }
}

void prior_free(jb_cuda_prior* p) {
  if (!p) return;
  jb_cuda_context* ctx = p->ctx;
  std::lock_guard<std::mutex> job(ctx->job);  // waits for a job in flight on the context
  destroy(p);
}

uint64_t prior_bytes(const jb_cuda_prior* p) { return p ? p->total_bytes : 0; }

int prior_window(jb_cuda_prior* p, const jb_cuda_window_args* a) {
  clear_error();
  if (!p || !a) return fail(JB_CUDA_ERR_INVALID_ARGUMENT, "prior_window: null prior or arguments");
  const std::string& name = p->name;
  auto bad = [&](const std::string& why) { return fail(JB_CUDA_ERR_INVALID_ARGUMENT, "prior_window(" + name + "): " + why); };
  if (p->encode_only) return bad("this model has no output projection (an encoder): use prior_forward");
  if (a->n < 1 || a->n > p->max_n) return bad("n " + std::to_string(a->n) + " is outside [1, max_samples " + std::to_string(p->max_n) + "]");
  if (!a->tokens) return bad("tokens is null");
  if (!(0 <= a->prefix && a->prefix <= a->end && a->end <= p->len))
    return bad("bad range prefix " + std::to_string(a->prefix) + ", end " + std::to_string(a->end) + " (len " + std::to_string(p->len) + ")");
  if (!a->y_cond && !p->has_start) return bad("this model is conditioned on labels: y_cond is required");
  if (a->x_cond && a->x_cond_len != p->len && a->x_cond_len != 1) return bad("x_cond must cover every position or be broadcast (x_cond_len len or 1)");
  if (p->needs_enc && !a->encoder_kv) return bad("this model attends to the lyric encoder: encoder_kv is required");
  if (a->prefill_chunk < 0) return bad("prefill_chunk is negative");
  const bool sampling = !a->forced && a->end > a->prefix;
  if (sampling) {
    if (!(a->temperature > 0.0f)) return bad("temperature must be > 0");
    if (a->top_k < 0 || a->top_p < 0.0f) return bad("top_k and top_p must not be negative");
    if (a->top_k > 0 && a->top_p > 0.0f) return bad("top_k and top_p cannot both be set (as in the original)");
  }
  const int n = a->n, L = p->len;
  std::string why = check_tokens(a->tokens, n, L, 0, a->prefix, p->bins, "token");
  if (why.empty() && a->forced) why = check_tokens(a->forced, n, L, a->prefix, a->end, p->bins, "forced token");
  if (!why.empty()) return bad(why);
  const int xc_len = a->x_cond ? a->x_cond_len : 0;

  jb_cuda_context* ctx = p->ctx;
  std::lock_guard<std::mutex> job(ctx->job);
  cudaError_t e = cudaSetDevice(ctx->device);
  if (e != cudaSuccess) return fail_cuda(e, "prior_window(" + name + "): selecting the device");
  cudaStream_t st = ctx->stream;
  int rc = upload_conditioning(p, n, a->y_cond, a->x_cond, xc_len, a->encoder_kv, "prior_window");
  if (rc != JB_CUDA_OK) return rc;
  e = upload(p->tokens, a->tokens, size_t(n) * L * 4, st);
  if (e == cudaSuccess && a->forced) e = upload(p->forced, a->forced, size_t(n) * L * 4, st);
  if (e != cudaSuccess) return fail_cuda(e, "prior_window(" + name + "): uploading the tokens");
  const double total = double(a->end);

  // The prefix: chunks (one pass = the largest chunk the scratch holds; the same logits).
  if (a->prefix > 0) {
    const int chunk = a->prefill_chunk > 0 ? std::min(a->prefill_chunk, p->chunk) : p->chunk;
    rc = run_prefix(p, n, a->prefix, chunk, a->y_cond != nullptr, xc_len, a->prefix_logits, a->prefix, -1, 0, nullptr, a->progress,
                    a->progress_user, 0.0, total, "prior_window");
    if (rc != JB_CUDA_OK) return rc;
  }
  if (a->end == a->prefix) return JB_CUDA_OK;

  // The decode: one graph, replayed for every position.
  StepConfig sc;
  sc.n = n;
  sc.y_cond = a->y_cond != nullptr;
  sc.xc_len = xc_len;
  sc.forced = a->forced != nullptr;
  sc.record = a->logits != nullptr;
  sc.record_base = a->prefix;
  sc.sampling.temperature = a->temperature > 0.0f ? a->temperature : 1.0f;
  sc.sampling.top_k = a->top_k;
  sc.sampling.top_p = a->top_p;
  sc.seed = a->seed;
  sc.stream_id = a->stream;
  sc.sample_offset = a->sample_offset;
  const int32_t start = a->prefix;
  e = cudaMemcpyAsync(p->pos, &start, 4, cudaMemcpyHostToDevice, st);
  if (e == cudaSuccess) e = cudaStreamSynchronize(st);  // `start` is on this stack
  if (e != cudaSuccess) return fail_cuda(e, "prior_window(" + name + "): setting the position");
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  e = cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal);
  if (e == cudaSuccess) {
    const cudaError_t step = enqueue_step(p, sc);
    e = cudaStreamEndCapture(st, &graph);
    if (step != cudaSuccess) e = step;
  }
  if (e == cudaSuccess) e = cudaGraphInstantiate(&exec, graph, 0);
  if (graph) cudaGraphDestroy(graph);
  if (e != cudaSuccess) {
    if (exec) cudaGraphExecDestroy(exec);
    return fail_cuda(e, "prior_window(" + name + "): capturing the decode step");
  }
  int every = a->check_every > 0 ? a->check_every : kDefaultCheckEvery;
  if (sc.record) every = std::min(every, kRecordSlots);
  rc = JB_CUDA_OK;
  const int steps = a->end - a->prefix;
  for (int done = 0; done < steps && rc == JB_CUDA_OK;) {
    const int batch = std::min(every, steps - done);
    for (int i = 0; i < batch && e == cudaSuccess; ++i) e = cudaGraphLaunch(exec, st);
    if (e == cudaSuccess && sc.record) {
      // the batch's logits: slots (t - prefix) % kRecordSlots, batch <= kRecordSlots of them
      for (int b = 0; b < n && e == cudaSuccess; ++b)
        for (int i = 0; i < batch && e == cudaSuccess; ++i) {
          const int t = done + i;
          e = cudaMemcpyAsync(a->logits + (size_t(b) * steps + t) * p->bins, p->rec + (size_t(b) * kRecordSlots + t % kRecordSlots) * p->bins,
                              size_t(p->bins) * 4, cudaMemcpyDeviceToHost, st);
        }
    }
    if (e == cudaSuccess) e = cudaStreamSynchronize(st);
    if (e != cudaSuccess) {
      rc = fail_cuda(e, "prior_window(" + name + "): decoding position " + std::to_string(a->prefix + done));
      break;
    }
    done += batch;
    if (a->progress && a->progress(a->progress_user, double(a->prefix + done), total))
      rc = fail(JB_CUDA_ERR_ABORTED, "prior_window(" + name + "): aborted at position " + std::to_string(a->prefix + done));
  }
  cudaGraphExecDestroy(exec);
  if (rc != JB_CUDA_OK) return rc;
  for (int b = 0; b < n && e == cudaSuccess; ++b)
    e = cudaMemcpyAsync(a->tokens + size_t(b) * L + a->prefix, p->tokens + size_t(b) * L + a->prefix, size_t(steps) * 4, cudaMemcpyDeviceToHost, st);
  if (e == cudaSuccess) e = cudaStreamSynchronize(st);
  if (e != cudaSuccess) return fail_cuda(e, "prior_window(" + name + "): reading the tokens");
  return JB_CUDA_OK;
}

int prior_forward(jb_cuda_prior* p, const jb_cuda_forward_args* a) {
  clear_error();
  if (!p || !a) return fail(JB_CUDA_ERR_INVALID_ARGUMENT, "prior_forward: null prior or arguments");
  const std::string& name = p->name;
  auto bad = [&](const std::string& why) { return fail(JB_CUDA_ERR_INVALID_ARGUMENT, "prior_forward(" + name + "): " + why); };
  if (a->n < 1 || a->n > p->max_n) return bad("n " + std::to_string(a->n) + " is outside [1, max_samples " + std::to_string(p->max_n) + "]");
  if (!a->tokens) return bad("tokens is null");
  if (!a->y_cond && !p->has_start) return bad("this model is conditioned on labels: y_cond is required");
  if (a->x_cond && a->x_cond_len != p->len && a->x_cond_len != 1) return bad("x_cond must cover every position or be broadcast (x_cond_len len or 1)");
  if (p->needs_enc && !a->encoder_kv) return bad("this model attends to the lyric encoder: encoder_kv is required");
  if (a->attn_layer >= p->depth) return bad("attn_layer " + std::to_string(a->attn_layer) + " is past the last layer");
  if (a->attn_layer >= 0 && (a->attn_head < 0 || a->attn_head >= p->heads || !a->attn_out))
    return bad("attn_head must be in [0, heads) and attn_out set when attn_layer >= 0");
  const int n = a->n, L = p->len;
  const std::string why = check_tokens(a->tokens, n, L, 0, L - 1, p->bins, "token");
  if (!why.empty()) return bad(why);
  const int xc_len = a->x_cond ? a->x_cond_len : 0;

  jb_cuda_context* ctx = p->ctx;
  std::lock_guard<std::mutex> job(ctx->job);
  cudaError_t e = cudaSetDevice(ctx->device);
  if (e != cudaSuccess) return fail_cuda(e, "prior_forward(" + name + "): selecting the device");
  cudaStream_t st = ctx->stream;
  int rc = upload_conditioning(p, n, a->y_cond, a->x_cond, xc_len, a->encoder_kv, "prior_forward");
  if (rc != JB_CUDA_OK) return rc;
  e = upload(p->tokens, a->tokens, size_t(n) * L * 4, st);
  if (e != cudaSuccess) return fail_cuda(e, "prior_forward(" + name + "): uploading the tokens");
  float* probs = nullptr;
  size_t probs_bytes = 0;
  if (a->attn_layer >= 0) {
    const int keys = p->layers[a->attn_layer].func == 6 ? p->enc_len : L;
    probs_bytes = size_t(n) * L * keys * 4;
    e = cudaMalloc(reinterpret_cast<void**>(&probs), probs_bytes);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      return fail(JB_CUDA_ERR_OUT_OF_MEMORY, "prior_forward(" + name + "): out of GPU memory allocating " + mib(probs_bytes) +
                                                 " for the attention probabilities");
    }
    e = cudaMemsetAsync(probs, 0, probs_bytes, st);
    if (e != cudaSuccess) {
      cudaFree(probs);
      return fail_cuda(e, "prior_forward(" + name + "): clearing the attention probabilities");
    }
  }
  rc = run_prefix(p, n, L, p->chunk, a->y_cond != nullptr, xc_len, a->out, L, a->attn_layer, a->attn_head, probs, a->progress,
                  a->progress_user, 0.0, double(L), "prior_forward");
  if (rc == JB_CUDA_OK && probs) {
    e = cudaMemcpyAsync(a->attn_out, probs, probs_bytes, cudaMemcpyDeviceToHost, st);
    if (e == cudaSuccess) e = cudaStreamSynchronize(st);
    if (e != cudaSuccess) rc = fail_cuda(e, "prior_forward(" + name + "): reading the attention probabilities");
  }
  if (probs) cudaFree(probs);
  return rc;
}

}  // namespace cuda
}  // namespace jb
