// The prior's per-position glue on the device (csrc/model/prior.cc Autoregressive::embed and
// the decode loop of csrc/model/decode_session.cc sample_window), so a decode step needs no
// host round trip: the input embedding of a position from the previous token (read from
// device memory), the conditioning added after the transformer, the step's token committed
// (sampled or teacher-forced) with the position counter advanced, and the step's logits
// kept in a device ring for the host to read every few tokens.
// Bytes: a row of x_emb, pos_emb and x_cond per (sample, position): n x w x ~10 bytes per
// step, nothing next to the layers' weights; one block per row, threads along the width
// (coalesced). Reference: ops_ref.h embed / add_cond.
#include "kernels.h"
#include "wtype.cuh"
#include "../common/jb_launch.h"

namespace jb {
namespace cuda {

namespace {

__device__ __forceinline__ float load_any(const void* p, int dtype, size_t i) {
  switch (dtype) {
    case kWF16: return wload(static_cast<const __half*>(p), i);
    case kWBF16: return wload(static_cast<const bf16_t*>(p), i);
    default: return wload(static_cast<const float*>(p), i);
  }
}

__global__ void embed_kernel(EmbedArgs e, int c, int p0, const int32_t* base_dev, float* h) {
  const int r = blockIdx.x, b = r / c, i = r % c;
  const int p = (base_dev ? int(*base_dev) : p0) + i;
  const int w = e.w;
  const float* start = e.y_cond ? e.y_cond + size_t(b) * w : e.start;
  const int32_t tok = p > 0 ? e.tokens[size_t(b) * e.len + p - 1] : 0;
  const float* xc = e.x_cond ? e.x_cond + (size_t(b) * e.xc_len + (e.xc_len == 1 ? 0 : p)) * w : nullptr;
  float* out = h + size_t(r) * w;
  for (int k = threadIdx.x; k < w; k += blockDim.x) {
    const float row = p == 0 ? start[k] : load_any(e.x_emb, e.x_emb_dtype, size_t(tok) * w + k);
    const float pos = load_any(e.pos_emb, e.pos_emb_dtype, size_t(p) * w + k);
    out[k] = __fadd_rn(__fadd_rn(row, pos), xc ? xc[k] : 0.0f);
  }
}

__global__ void add_cond_kernel(const float* __restrict__ x_cond, int xc_len, int c, int p0, const int32_t* base_dev, int w, float* h) {
  const int r = blockIdx.x, b = r / c, i = r % c;
  const int p = (base_dev ? int(*base_dev) : p0) + i;
  const float* xc = x_cond + (size_t(b) * xc_len + (xc_len == 1 ? 0 : p)) * w;
  float* out = h + size_t(r) * w;
  for (int k = threadIdx.x; k < w; k += blockDim.x) out[k] = __fadd_rn(out[k], xc[k]);
}

// One block: every sample's token at the position, then (after a barrier, so no thread
// reads the counter after it moved) the counter.
__global__ void commit_tokens_kernel(const int32_t* __restrict__ sampled, const int32_t* __restrict__ forced, int n, int len, int32_t* tokens,
                                     int32_t* pos) {
  const int t = *pos;
  for (int b = threadIdx.x; b < n; b += blockDim.x) {
    const size_t at = size_t(b) * len + t;
    tokens[at] = forced ? forced[at] : sampled[b];
  }
  __syncthreads();
  if (threadIdx.x == 0) *pos = t + 1;
}

__global__ void record_logits_kernel(const float* __restrict__ logits, int bins, const int32_t* pos, int base, int slots, float* rec) {
  const int b = blockIdx.y;
  const int slot = (int(*pos) - base) % slots;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < bins) rec[(size_t(b) * slots + slot) * bins + i] = logits[size_t(b) * bins + i];
}

}  // namespace

cudaError_t embed(const EmbedArgs& e, int n, int c, int p0, const int32_t* base_dev, float* h, cudaStream_t stream) {
  if (n < 1 || c < 1 || e.w < 1 || !e.x_emb || !e.pos_emb || (!e.y_cond && !e.start)) return cudaErrorInvalidValue;
  JB_LAUNCH(embed_kernel, n * c, 128, 0, stream)(e, c, p0, base_dev, h);
  return cudaGetLastError();
}

cudaError_t add_cond(const float* x_cond, int xc_len, int n, int c, int p0, const int32_t* base_dev, int w, float* h, cudaStream_t stream) {
  if (!x_cond) return cudaSuccess;
  if (n < 1 || c < 1 || w < 1) return cudaErrorInvalidValue;
  JB_LAUNCH(add_cond_kernel, n * c, 128, 0, stream)(x_cond, xc_len, c, p0, base_dev, w, h);
  return cudaGetLastError();
}

cudaError_t commit_tokens(const int32_t* sampled, const int32_t* forced, int n, int len, int32_t* tokens, int32_t* pos, cudaStream_t stream) {
  if (n < 1 || !pos || !tokens) return cudaErrorInvalidValue;
  JB_LAUNCH(commit_tokens_kernel, 1, 32, 0, stream)(sampled, forced, n, len, tokens, pos);
  return cudaGetLastError();
}

cudaError_t record_logits(const float* logits, int n, int bins, const int32_t* pos, int base, int slots, float* rec, cudaStream_t stream) {
  if (n < 1 || bins < 1 || slots < 1) return cudaErrorInvalidValue;
  JB_LAUNCH(record_logits_kernel, dim3(unsigned((bins + 255) / 256), unsigned(n)), 256, 0, stream)(logits, bins, pos, base, slots, rec);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace jb
