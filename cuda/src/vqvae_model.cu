// The VQ-VAE decoder on the device (include/jukebox_cuda.h vqvae_create / vqvae_free /
// vqvae_decode): one decoder stack of one level, run as the CPU engine's run_stack runs it
// (csrc/model/vqvae.cc), which is the reference (cuda/test/vqvae_model_test.cc compares the
// two):
//   x = codebook rows of the codes (NCT, kernels/conv1d.cu dequantize)
//   Conv layer:  x = conv(x)                         (no ReLU on its input: the stack's final
//                                                     conv reads the un-ReLU'd activation)
//   Res layer:   h = conv_a(relu(x)); x += res_scale * conv_b(relu(h))   (in place on x)
// with every conv on kernels/conv1d.cu (the tiled implicit GEMM, or the direct kernel for
// the one-channel output conv).
//
// Memory: create uploads the codebook and every weight and bias (fp32) in one allocation,
// after checking the bytes against the device's free memory. decode keeps one grow-only
// workspace per model (codes, two activation buffers and the residual hidden), freed by
// vqvae_free. Long inputs are decoded in chunks along time so the workspace stays bounded
// (JUKEBOX_CUDA_VQ_WORKSPACE bytes, default 256 MiB, less when the device has less free):
// each chunk of C codes is run with `halo` codes of context on both sides (the stack's
// receptive field: sum over its convs of their reach in input steps, divided by the
// upsampling before them, rounded up) and only its own C * hop samples are kept. Every conv
// here is shift-equivariant (each layer maps t steps to exactly f * t) and an output's
// arithmetic depends only on its own column, so chunked results equal one-pass results bit
// for bit, and equal the CPU engine (which does not chunk) to rounding.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "../kernels/kernels.h"
#include "internal.h"

namespace {

struct VqConv {
  jb::cuda::ConvShape s;
  const float* w = nullptr;  // device, inside the model's weight allocation
  const float* b = nullptr;
};

struct VqLayer {
  bool residual = false;
  float res_scale = 1.0f;
  VqConv a, b;
  int up = 1;  // this layer maps t steps to up * t
};

}  // namespace

struct jb_cuda_vqvae {
  jb_cuda_context* ctx = nullptr;
  std::string name;
  int bins = 0, emb = 0, hop = 1, out_channels = 1;
  std::vector<VqLayer> layers;
  const float* codebook = nullptr;
  void* weights = nullptr;
  size_t weight_bytes = 0;
  void* work = nullptr;  // the decode workspace, grow-only
  size_t work_bytes = 0;
  int halo = 0;             // codes of context each side of a chunk
  size_t act_per_code = 0;  // floats per code and batch item of the largest activation
  size_t hidden_per_code = 0;  // ... of the largest residual hidden
};

namespace jb {
namespace cuda {

namespace {

std::string mib(uint64_t bytes) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / (1024.0 * 1024.0));
  return buf;
}

std::string model_name(const std::string& n) { return n.empty() ? std::string("the VQ-VAE decoder") : "VQ-VAE decoder '" + n + "'"; }

constexpr size_t kAlignFloats = 64;  // 256 bytes: every tensor in an allocation starts aligned
size_t align_up(size_t n) { return (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats; }

// "4MiB", "512KiB", "1GiB", "123456": bytes; 0 when unset or unreadable.
size_t env_bytes(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  char* end = nullptr;
  const double x = std::strtod(v, &end);
  if (!(x > 0)) return 0;
  double mul = 1;
  const std::string unit = end ? end : "";
  if (unit == "KiB" || unit == "K" || unit == "k") mul = 1024.0;
  else if (unit == "MiB" || unit == "M") mul = 1024.0 * 1024.0;
  else if (unit == "GiB" || unit == "G") mul = 1024.0 * 1024.0 * 1024.0;
  else if (!unit.empty()) return 0;
  return size_t(x * mul);
}

constexpr size_t kDefaultWorkspace = size_t(256) << 20;

// One conv of the desc, checked. `where` names it in messages.
bool check_conv(const jb_cuda_conv_desc& c, const std::string& where, std::string& why) {
  auto bad = [&](const std::string& what) {
    why = where + ": " + what;
    return false;
  };
  if (c.cin < 1 || c.cout < 1 || c.cin > (1 << 16) || c.cout > (1 << 16))
    return bad("channels " + std::to_string(c.cin) + " -> " + std::to_string(c.cout) + " (each must be in [1, 65536])");
  if (c.kernel < 1 || c.kernel > 1024) return bad("kernel " + std::to_string(c.kernel) + " (must be in [1, 1024])");
  if (c.stride < 1 || c.stride > 1024) return bad("stride " + std::to_string(c.stride) + " (must be in [1, 1024])");
  if (c.dilation < 1) return bad("dilation " + std::to_string(c.dilation) + " (must be >= 1)");
  if (c.pad < 0) return bad("padding " + std::to_string(c.pad) + " (must be >= 0)");
  if ((long long)c.dilation * (c.kernel - 1) > kConvMaxSpan || c.pad > kConvMaxSpan)
    return bad("dilation " + std::to_string(c.dilation) + " x (kernel - 1) or padding " + std::to_string(c.pad) + " is above " +
               std::to_string(kConvMaxSpan));
  if (!c.w) return bad("no weights");
  return true;
}

ConvShape shape_of(const jb_cuda_conv_desc& c) {
  ConvShape s;
  s.cin = c.cin;
  s.cout = c.cout;
  s.kernel = c.kernel;
  s.stride = c.stride;
  s.pad = c.pad;
  s.dilation = c.dilation;
  s.transposed = c.transposed != 0;
  return s;
}

// f when the conv maps every length t to exactly f * t (f >= 1), else 0.
int exact_factor(const ConvShape& s) {
  const int f = conv_out_len(s, 1);
  if (f < 1) return 0;
  for (int t : {2, 3, 1000, 1001})
    if ((long long)conv_out_len(s, t) != (long long)f * t) return 0;
  return f;
}

// How many input steps away an output of the conv reads, at most (either side).
long long conv_reach(const ConvShape& s) {
  const long long span = (long long)s.dilation * (s.kernel - 1);
  if (!s.transposed) return std::max<long long>(s.pad, span - s.pad);  // stride 1 here (exact_factor)
  // output q * st + r reads x[q + (r + pad - k * dil) / st] (exact divisions): offsets in
  // [floor((pad - span) / st), floor((st - 1 + pad) / st)]
  const long long lo = (span - s.pad + s.stride - 1) / s.stride, hi = (s.stride - 1 + s.pad) / s.stride;
  return std::max(lo, hi) + 1;
}

double stack_flops(const jb_cuda_vqvae* vq, int n, int t) {
  double f = 0;
  for (const VqLayer& l : vq->layers) {
    f += conv_flops(l.a.s, n, t);
    if (l.residual) f += conv_flops(l.b.s, n, t);
    t *= l.up;
  }
  return f;
}

}  // namespace

bool vqvae_model_implemented() { return true; }

int vqvae_create(jb_cuda_context* ctx, const jb_cuda_vqvae_desc* d, jb_cuda_vqvae** out) {
  clear_error();
  if (out) *out = nullptr;
  if (!ctx || !d || !out) return fail(JB_CUDA_ERR_INVALID_ARGUMENT, "vqvae_create: null context, description or output");
  const std::string name = d->name ? d->name : "";
  const std::string who = "vqvae_create (" + model_name(name) + ")";
  auto invalid = [&](const std::string& why) { return fail(JB_CUDA_ERR_INVALID_ARGUMENT, who + ": " + why); };
  if (d->bins < 1 || d->emb_width < 1 || !d->codebook)
    return invalid("codebook of " + std::to_string(d->bins) + " x " + std::to_string(d->emb_width) + (d->codebook ? "" : " with no data") +
                   " (bins and emb_width must be >= 1)");
  if (d->hop < 1) return invalid("hop " + std::to_string(d->hop) + " (must be >= 1)");
  if (d->out_channels < 1) return invalid("out_channels " + std::to_string(d->out_channels) + " (must be >= 1)");
  if (d->depth < 1 || !d->layers) return invalid("no layers (depth " + std::to_string(d->depth) + ")");

  try {
    jb_cuda_vqvae* vq = new jb_cuda_vqvae;
    std::unique_ptr<jb_cuda_vqvae> guard(vq);
    vq->ctx = ctx;
    vq->name = name;
    vq->bins = d->bins;
    vq->emb = d->emb_width;
    vq->hop = d->hop;
    vq->out_channels = d->out_channels;

    // Validate the chain and lay out the weights (floats, each tensor aligned).
    size_t floats = align_up(size_t(d->bins) * d->emb_width);
    std::vector<std::pair<const float*, size_t>> pieces;  // host data (or null: zeros), count
    std::vector<size_t> offsets;
    pieces.push_back({d->codebook, size_t(d->bins) * d->emb_width});
    offsets.push_back(0);
    auto place = [&](const float* src, size_t n) {
      offsets.push_back(floats);
      pieces.push_back({src, n});
      floats += align_up(n);
    };
    int c = d->emb_width;
    long long up = 1;  // samples per code at the current layer's input
    double reach_codes = 0;
    size_t act = size_t(c), hidden = 0;
    std::string why;
    for (int i = 0; i < d->depth; ++i) {
      const jb_cuda_vq_layer_desc& L = d->layers[i];
      const std::string where = "layer " + std::to_string(i) + (L.residual ? " (residual)" : " (conv)");
      VqLayer l;
      l.residual = L.residual != 0;
      l.res_scale = L.res_scale;
      if (!check_conv(L.a, where + (l.residual ? " conv_a" : ""), why)) return invalid(why);
      l.a.s = shape_of(L.a);
      if (L.a.cin != c)
        return invalid(where + (l.residual ? " conv_a" : "") + ": cin " + std::to_string(L.a.cin) + " does not match the " + std::to_string(c) +
                       " channels of its input" + (i == 0 ? " (the codebook's emb_width)" : ""));
      const int fa = exact_factor(l.a.s);
      if (l.residual) {
        if (!std::isfinite(L.res_scale)) return invalid(where + ": res_scale is not finite");
        if (!check_conv(L.b, where + " conv_b", why)) return invalid(why);
        l.b.s = shape_of(L.b);
        if (l.a.s.transposed || fa != 1)
          return invalid(where + " conv_a: a residual block's first conv must keep the length (stride 1, pad = dilation * (kernel - 1) / 2)");
        if (L.b.cin != L.a.cout || L.b.cout != c)
          return invalid(where + " conv_b: " + std::to_string(L.b.cin) + " -> " + std::to_string(L.b.cout) + " channels; the block needs " +
                         std::to_string(L.a.cout) + " -> " + std::to_string(c));
        if (l.b.s.transposed || exact_factor(l.b.s) != 1)
          return invalid(where + " conv_b: a residual block's second conv must keep the length");
        hidden = std::max(hidden, size_t(L.a.cout) * size_t(up));
        reach_codes += std::ceil(double(conv_reach(l.a.s)) / double(up)) + std::ceil(double(conv_reach(l.b.s)) / double(up));
        l.up = 1;
      } else {
        if (fa < 1)
          return invalid(where + ": maps " + std::to_string(1000) + " steps to " + std::to_string(conv_out_len(l.a.s, 1000)) +
                         "; a decoder's convs must map t steps to exactly f * t (f >= 1: same-length or upsampling)");
        reach_codes += std::ceil(double(conv_reach(l.a.s)) / double(up));
        l.up = fa;
        up *= fa;
        if (up > (1 << 20)) return invalid(where + ": upsampling past 2^20 samples per code");
        c = L.a.cout;
        act = std::max(act, size_t(c) * size_t(up));
      }
      place(L.a.w, size_t(L.a.cin) * L.a.cout * L.a.kernel);
      place(L.a.b, size_t(L.a.cout));
      if (l.residual) {
        place(L.b.w, size_t(L.b.cin) * L.b.cout * L.b.kernel);
        place(L.b.b, size_t(L.b.cout));
      }
      vq->layers.push_back(l);
    }
    if (up != d->hop)
      return invalid("the stack upsamples by " + std::to_string(up) + " samples per code but hop is " + std::to_string(d->hop));
    if (c != d->out_channels)
      return invalid("the stack ends with " + std::to_string(c) + " channels but out_channels is " + std::to_string(d->out_channels));
    vq->halo = int(std::min(reach_codes, 1e8)) + 1;
    vq->act_per_code = act;
    vq->hidden_per_code = hidden;

    const size_t bytes = floats * sizeof(float);
    cudaError_t e = cudaSetDevice(ctx->device);
    if (e != cudaSuccess) return fail_cuda(e, who + ": selecting CUDA device " + std::to_string(ctx->device));
    size_t free_b = 0, total_b = 0;
    e = cudaMemGetInfo(&free_b, &total_b);
    if (e != cudaSuccess) return fail_cuda(e, who + ": cudaMemGetInfo");
    auto oom = [&](size_t free_now) {
      return fail(JB_CUDA_ERR_OUT_OF_MEMORY, "out of GPU memory creating " + model_name(name) + ": its codebook and " + std::to_string(d->depth) +
                                                 " layers' weights need " + mib(bytes) + " (" + std::to_string(bytes) + " bytes) on " +
                                                 ctx->device_name + ", " + mib(free_now) + " (" + std::to_string(free_now) + " bytes) free of " +
                                                 mib(total_b));
    };
    if (bytes > free_b) return oom(free_b);  // preflight: nothing allocated
    void* p = nullptr;
    e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      cudaMemGetInfo(&free_b, &total_b);
      return oom(free_b);
    }
    if (e != cudaSuccess) return fail_cuda(e, who + ": allocating " + mib(bytes) + " for the weights");
    vq->weights = p;
    vq->weight_bytes = bytes;
    // One staging copy of everything (the weights are MiBs), one upload on the context's stream.
    std::vector<float> host(floats, 0.0f);
    for (size_t i = 0; i < pieces.size(); ++i)
      if (pieces[i].first) std::memcpy(host.data() + offsets[i], pieces[i].first, pieces[i].second * sizeof(float));
    e = cudaMemcpyAsync(p, host.data(), bytes, cudaMemcpyHostToDevice, ctx->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(ctx->stream);
    if (e != cudaSuccess) {
      cudaFree(p);
      return fail_cuda(e, who + ": uploading the weights");
    }
    const float* base = static_cast<const float*>(p);
    vq->codebook = base;
    size_t k = 1;
    for (VqLayer& l : vq->layers) {
      l.a.w = base + offsets[k++];
      l.a.b = base + offsets[k++];
      if (l.residual) {
        l.b.w = base + offsets[k++];
        l.b.b = base + offsets[k++];
      }
    }
    {
      std::lock_guard<std::mutex> lock(ctx->mutex);
      ctx->vqvaes.insert(vq);
      ctx->bytes += bytes;
    }
    guard.release();
    *out = vq;
    return JB_CUDA_OK;
  } catch (const std::bad_alloc&) {
    return fail(JB_CUDA_ERR_OUT_OF_MEMORY, who + ": out of host memory");
  }
}

void vqvae_free(jb_cuda_vqvae* vq) {
  if (!vq) return;
  jb_cuda_context* ctx = vq->ctx;
  {
    std::lock_guard<std::mutex> job(ctx->job);  // waits for a decode in flight
    cudaSetDevice(ctx->device);
    cudaStreamSynchronize(ctx->stream);
    if (vq->weights) cudaFree(vq->weights);
    if (vq->work) cudaFree(vq->work);
  }
  {
    std::lock_guard<std::mutex> lock(ctx->mutex);
    ctx->vqvaes.erase(vq);
    ctx->bytes -= vq->weight_bytes + vq->work_bytes;
  }
  delete vq;
}

int vqvae_decode(jb_cuda_vqvae* vq, const jb_cuda_vq_decode_args* a) {
  clear_error();
  if (!vq || !a) return fail(JB_CUDA_ERR_INVALID_ARGUMENT, "vqvae_decode: null model or arguments");
  const std::string who = "vqvae_decode (" + model_name(vq->name) + ")";
  if (a->n < 1 || a->t < 1) return fail(JB_CUDA_ERR_INVALID_ARGUMENT, who + ": no codes to decode (n " + std::to_string(a->n) + ", t " + std::to_string(a->t) + ")");
  if (!a->codes || !a->out) return fail(JB_CUDA_ERR_INVALID_ARGUMENT, who + ": null codes or output");
  const int n = a->n, t = a->t, hop = vq->hop;
  if (n > 4096) return fail(JB_CUDA_ERR_INVALID_ARGUMENT, who + ": n " + std::to_string(n) + " is above 4096");
  if ((long long)t * hop > (1LL << 40)) return fail(JB_CUDA_ERR_INVALID_ARGUMENT, who + ": t * hop is past 2^40 samples");
  for (size_t i = 0, all = size_t(n) * t; i < all; ++i)
    if (a->codes[i] < 0 || a->codes[i] >= vq->bins)
      return fail(JB_CUDA_ERR_INVALID_ARGUMENT, who + ": code " + std::to_string(a->codes[i]) + " at index " + std::to_string(i) + " (row " +
                                                    std::to_string(i / size_t(t)) + ", step " + std::to_string(i % size_t(t)) + ") is outside [0, " +
                                                    std::to_string(vq->bins) + ")");
  jb_cuda_context* ctx = vq->ctx;
  try {
    std::lock_guard<std::mutex> job(ctx->job);
    cudaError_t e = cudaSetDevice(ctx->device);
    if (e != cudaSuccess) return fail_cuda(e, who + ": selecting CUDA device " + std::to_string(ctx->device));

    // Chunk geometry: a window of w codes needs w * per_code floats (+ its codes).
    const size_t per_code = size_t(n) * (2 * vq->act_per_code + vq->hidden_per_code) + size_t(n);  // floats (codes as int32)
    const size_t per_code_bytes = per_code * sizeof(float);
    size_t free_b = 0, total_b = 0;
    e = cudaMemGetInfo(&free_b, &total_b);
    if (e != cudaSuccess) return fail_cuda(e, who + ": cudaMemGetInfo");
    size_t budget = env_bytes("JUKEBOX_CUDA_VQ_WORKSPACE");
    if (!budget) budget = kDefaultWorkspace;
    // Never plan past what the device could give (the current workspace is reusable).
    const size_t avail = vq->work_bytes + size_t(double(free_b) * 0.9);
    budget = std::min(budget, avail);
    const int H = vq->halo;
    const long long max_window_int = (1LL << 30) / std::max<long long>(1, (long long)hop);  // conv lengths stay ints
    long long C;  // codes per chunk
    const long long fit = (long long)(budget / per_code_bytes);
    if ((long long)t <= fit && t <= max_window_int) {
      C = t;  // one pass
    } else {
      C = std::min(fit, max_window_int) - 2LL * H;
      C = std::max<long long>(C, std::max(16, H));  // below that the halo's recompute dominates
    }
    const long long window = std::min<long long>(t, C + 2LL * H);
    const int chunks = int((t + C - 1) / C);
    const size_t codes_floats = align_up(size_t(n) * window);
    const size_t act_floats = align_up(size_t(n) * vq->act_per_code * window);
    const size_t hid_floats = align_up(size_t(n) * vq->hidden_per_code * window);
    const size_t need = (codes_floats + 2 * act_floats + hid_floats) * sizeof(float);
    if (need > vq->work_bytes) {
      auto oom = [&](size_t free_now) {
        uint64_t held;
        {
          std::lock_guard<std::mutex> lock(ctx->mutex);
          held = ctx->bytes;
        }
        return fail(JB_CUDA_ERR_OUT_OF_MEMORY, "out of GPU memory allocating " + mib(need) + " (" + std::to_string(need) + " bytes) for the activations of " +
                                                   model_name(vq->name) + " (n " + std::to_string(n) + ", chunks of " + std::to_string(C) + " codes + " +
                                                   std::to_string(H) + " each side) on " + ctx->device_name + " (" + mib(free_now) + " (" +
                                                   std::to_string(free_now) + " bytes) free of " + mib(total_b) + "; this model holds " + mib(held) + ")");
      };
      if (need > free_b + vq->work_bytes) return oom(free_b);
      if (vq->work) cudaFree(vq->work);  // waits for the work that used it
      {
        std::lock_guard<std::mutex> lock(ctx->mutex);
        ctx->bytes -= vq->work_bytes;
      }
      vq->work = nullptr;
      vq->work_bytes = 0;
      void* p = nullptr;
      e = cudaMalloc(&p, need);
      if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        cudaMemGetInfo(&free_b, &total_b);
        return oom(free_b);
      }
      if (e != cudaSuccess) return fail_cuda(e, who + ": allocating " + mib(need) + " for the activations");
      vq->work = p;
      vq->work_bytes = need;
      std::lock_guard<std::mutex> lock(ctx->mutex);
      ctx->bytes += need;
    }
    int32_t* codes_dev = static_cast<int32_t*>(vq->work);
    float* buf_a = static_cast<float*>(vq->work) + codes_floats;
    float* buf_b = buf_a + act_floats;
    float* buf_h = buf_b + act_floats;

    // Progress in FLOPs, the halos' recompute included.
    double total = 0, done = 0;
    for (int ch = 0; ch < chunks; ++ch) {
      const long long c0 = (long long)ch * C, c1 = std::min<long long>(t, c0 + C);
      const long long w0 = std::max<long long>(0, c0 - H), w1 = std::min<long long>(t, c1 + H);
      total += stack_flops(vq, n, int(w1 - w0));
    }
    const size_t T = size_t(t) * hop;
    std::vector<int32_t> stage(size_t(n) * window);
    for (int ch = 0; ch < chunks; ++ch) {
      const long long c0 = (long long)ch * C, c1 = std::min<long long>(t, c0 + C);
      const long long w0 = std::max<long long>(0, c0 - H), w1 = std::min<long long>(t, c1 + H);
      const int wl = int(w1 - w0);
      for (int b = 0; b < n; ++b) std::memcpy(stage.data() + size_t(b) * wl, a->codes + size_t(b) * t + w0, size_t(wl) * sizeof(int32_t));
      e = cudaMemcpyAsync(codes_dev, stage.data(), size_t(n) * wl * sizeof(int32_t), cudaMemcpyHostToDevice, ctx->stream);
      if (e != cudaSuccess) return fail_cuda(e, who + ": uploading the codes");
      float* x = buf_a;
      float* y = buf_b;
      e = dequantize(codes_dev, n, wl, vq->codebook, vq->bins, vq->emb, x, ctx->stream);
      if (e != cudaSuccess) return fail_cuda(e, who + ": the codebook lookup");
      int tl = wl;
      for (size_t li = 0; li < vq->layers.size(); ++li) {
        const VqLayer& l = vq->layers[li];
        double f = conv_flops(l.a.s, n, tl);
        if (!l.residual) {
          e = conv1d(l.a.s, x, n, tl, l.a.w, l.a.b, y, false, false, 1.0f, ctx->stream);
          std::swap(x, y);
          tl *= l.up;
        } else {
          e = conv1d(l.a.s, x, n, tl, l.a.w, l.a.b, buf_h, true, false, 1.0f, ctx->stream);
          if (e == cudaSuccess) e = conv1d(l.b.s, buf_h, n, tl, l.b.w, l.b.b, x, true, true, l.res_scale, ctx->stream);
          f += conv_flops(l.b.s, n, tl);
        }
        if (e != cudaSuccess) return fail_cuda(e, who + ": layer " + std::to_string(li) + " of chunk " + std::to_string(ch));
        done += f;
        if (a->progress) {
          // Between layers: what has run, not what is queued (and an abort stops at once).
          e = cudaStreamSynchronize(ctx->stream);
          if (e != cudaSuccess) return fail_cuda(e, who + ": layer " + std::to_string(li) + " of chunk " + std::to_string(ch));
          if (a->progress(a->progress_user, done, total) != 0)
            return fail(JB_CUDA_ERR_ABORTED, who + ": aborted by the progress callback after layer " + std::to_string(li + 1) + " of " +
                                                 std::to_string(vq->layers.size()) + " (chunk " + std::to_string(ch + 1) + " of " + std::to_string(chunks) + ")");
        }
      }
      // This chunk's own samples, row by row, into out (n x out_channels x T).
      const size_t keep = size_t(c1 - c0) * hop, skip = size_t(c0 - w0) * hop;
      for (int b = 0; b < n; ++b)
        for (int oc = 0; oc < vq->out_channels; ++oc) {
          const size_t row = size_t(b) * vq->out_channels + oc;
          e = cudaMemcpyAsync(a->out + row * T + size_t(c0) * hop, x + row * size_t(tl) + skip, keep * sizeof(float), cudaMemcpyDeviceToHost,
                              ctx->stream);
          if (e != cudaSuccess) return fail_cuda(e, who + ": reading the audio back");
        }
      e = cudaStreamSynchronize(ctx->stream);  // the staging and output copies are done
      if (e != cudaSuccess) return fail_cuda(e, who + ": chunk " + std::to_string(ch));
    }
    return JB_CUDA_OK;
  } catch (const std::bad_alloc&) {
    return fail(JB_CUDA_ERR_OUT_OF_MEMORY, who + ": out of host memory");
  }
}

}  // namespace cuda
}  // namespace jb
