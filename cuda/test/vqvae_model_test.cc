// The VQ-VAE decoder through the library's C ABI (vqvae_create / vqvae_decode / vqvae_free,
// include/jukebox_cuda.h), loaded with dlopen as the addon loads it, against the CPU engine
// (csrc/model/vqvae.h: the same stack as VQStack, decoded by VQVAE::decode / run_stack),
// with random weights on:
//  - the project's default model's decoders (models/default/vqvae.safetensors metadata:
//    emb_width 64, width 32, depth 4, dilation_growth_rate 3, reversed decoder dilations,
//    downs_t [3, 2, 2], strides_t 2: hops 8 / 32 / 128, l_bins 512), every level;
//  - official-like decoders (width x2 / depth x2 at level 0, dilation_cycle 4, m_conv 2,
//    res_scale 1/sqrt(depth)) and an odd one (emb 13, width 24, m_conv 1.5, stride 4,
//    growth 2, res_scale 0.7);
//  - n = 1..3, a long input decoded in chunks (JUKEBOX_CUDA_VQ_WORKSPACE small) equal bit
//    for bit to the one-pass decode, bad codes refused with the index, an abort from the
//    progress callback, out-of-memory at create and at decode (free memory filled with a
//    buffer) with the message checked, invalid descriptions, memory returned by free and by
//    context_destroy (memory_info).
// Tolerance: max |gpu - cpu| <= 1e-5 * max |cpu| per decode (both fp32 with different
// summation orders: ~sqrt(K) * 2^-24 relative per conv, over ~15-40 convs).
// Prints the emulated (or GPU) time of decoding 3 s of default-model audio at level 0.
// Usage: jukebox-cuda-vqvae-test path/to/libjukebox-cuda.so [--no-timing] (skips the 3 s
// decode: the sanitizer runs). Prints "ok N checks".
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "../../csrc/model/vqvae.h"
#include "../include/jukebox_cuda.h"
#include "check.h"

namespace {

const jb_cuda_api* api = nullptr;

#define API_OK(call) CHECK((call) == JB_CUDA_OK, "%s: %s", #call, api->last_error())

std::mt19937 rng(1234);

std::vector<float> uniform(size_t n, float bound) {
  std::uniform_real_distribution<float> u(-bound, bound);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// Decoder hyperparameters, as lib/vqvae/layout.ts reads them.
struct Hparams {
  int emb = 64, width = 32, depth = 4, bins = 512;
  double m_conv = 1.0;
  int growth = 3;
  int cycle = 0;  // 0: none
  bool reverse = true;
  float res_scale = 1.0f;
  std::vector<int> downs{3, 2, 2}, strides{2, 2, 2};
  std::vector<int> mult;  // hvqvae_multipliers (empty: 1)
};

struct ConvW {
  jb::ConvParams p;
  std::vector<float> w, b;
};
struct LayerW {
  bool res = false;
  float scale = 1.0f;
  ConvW a, b;
};

// One level's decoder (layout.ts vqvaeLayout / decoderConvBlock / resnet), random weights
// (PyTorch's default bound 1/sqrt(fan_in)).
struct Decoder {
  int emb = 0, bins = 0, hop = 1;
  std::vector<float> codebook;
  std::vector<LayerW> layers;
};

ConvW make_conv(int cin, int cout, int k, int stride, int pad, int dil, bool transposed) {
  ConvW c;
  c.p.cin = cin;
  c.p.cout = cout;
  c.p.kernel = k;
  c.p.stride = stride;
  c.p.pad = pad;
  c.p.dilation = dil;
  c.p.transposed = transposed;
  const float bound = 1.0f / std::sqrt(float((transposed ? cout : cin) * k));
  c.w = uniform(size_t(cin) * cout * k, bound);
  c.b = uniform(cout, bound);
  return c;
}

Decoder make_decoder(const Hparams& h, int level) {
  Decoder d;
  d.emb = h.emb;
  d.bins = h.bins;
  const int m = h.mult.empty() ? 1 : h.mult[level];
  const int width = h.width * m, depth = h.depth * m, n_state = int(h.m_conv * width);
  std::vector<int> dil;
  for (int i = 0; i < depth; ++i) {
    int e = h.cycle ? i % h.cycle : i, v = 1;
    while (e-- > 0) v *= h.growth;
    dil.push_back(v);
  }
  if (h.reverse) std::reverse(dil.begin(), dil.end());
  for (int b = level; b >= 0; --b) {
    if (h.downs[b] == 0) continue;
    LayerW in;
    in.a = make_conv(h.emb, width, 3, 1, 1, 1, false);
    d.layers.push_back(std::move(in));
    for (int i = 0; i < h.downs[b]; ++i) {
      for (int j = 0; j < depth; ++j) {
        LayerW r;
        r.res = true;
        r.scale = h.res_scale;
        r.a = make_conv(width, n_state, 3, 1, dil[j], dil[j], false);
        r.b = make_conv(n_state, width, 1, 1, 0, 1, false);
        d.layers.push_back(std::move(r));
      }
      const int s = h.strides[b];
      LayerW up;
      up.a = make_conv(width, i == h.downs[b] - 1 ? h.emb : width, 2 * s, s, s / 2, 1, true);
      d.layers.push_back(std::move(up));
      d.hop *= s;
    }
  }
  LayerW out;
  out.a = make_conv(h.emb, 1, 3, 1, 1, 1, false);
  d.layers.push_back(std::move(out));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  d.codebook.resize(size_t(h.bins) * h.emb);
  for (auto& x : d.codebook) x = nd(rng);
  return d;
}

// The CPU engine's VQ-VAE with this decoder as its only level.
std::unique_ptr<jb::VQVAE> cpu_model(const Decoder& d) {
  jb::VQStack s;
  s.in_channels = d.emb;
  s.out_channels = 1;
  for (const LayerW& l : d.layers) {
    jb::VQLayer v;
    v.kind = l.res ? jb::VQLayer::Kind::Res : jb::VQLayer::Kind::Conv;
    v.res_scale = l.scale;
    v.a = std::make_unique<jb::Conv1d>(l.a.p, l.a.w.data(), l.a.b.data());
    if (l.res) v.b = std::make_unique<jb::Conv1d>(l.b.p, l.b.w.data(), l.b.b.data());
    s.layers.push_back(std::move(v));
  }
  std::vector<jb::VQStack> enc(1), dec;
  dec.push_back(std::move(s));
  std::vector<jb::Codebook> cbs;
  cbs.emplace_back(d.codebook.data(), d.bins, d.emb);
  return std::make_unique<jb::VQVAE>(std::move(enc), std::move(dec), std::move(cbs), std::vector<int>{d.hop});
}

// The ABI's description of the same decoder (pointers into d).
struct Desc {
  std::vector<jb_cuda_vq_layer_desc> layers;
  jb_cuda_vqvae_desc desc;
};
jb_cuda_conv_desc conv_desc(const ConvW& c) {
  jb_cuda_conv_desc o;
  o.cin = c.p.cin;
  o.cout = c.p.cout;
  o.kernel = c.p.kernel;
  o.stride = c.p.stride;
  o.pad = c.p.pad;
  o.dilation = c.p.dilation;
  o.transposed = c.p.transposed ? 1 : 0;
  o.w = c.w.data();
  o.b = c.b.data();
  return o;
}
std::unique_ptr<Desc> abi_desc(const Decoder& d, const char* name) {
  auto o = std::make_unique<Desc>();
  for (const LayerW& l : d.layers) {
    jb_cuda_vq_layer_desc v;
    std::memset(&v, 0, sizeof v);
    v.residual = l.res ? 1 : 0;
    v.res_scale = l.scale;
    v.a = conv_desc(l.a);
    if (l.res) v.b = conv_desc(l.b);
    o->layers.push_back(v);
  }
  jb_cuda_vqvae_desc& x = o->desc;
  x.name = name;
  x.bins = d.bins;
  x.emb_width = d.emb;
  x.codebook = d.codebook.data();
  x.hop = d.hop;
  x.out_channels = 1;
  x.depth = int(o->layers.size());
  x.layers = o->layers.data();
  return o;
}

std::vector<int32_t> random_codes(int n, int t, int bins) {
  std::uniform_int_distribution<int> u(0, bins - 1);
  std::vector<int32_t> c(size_t(n) * t);
  for (auto& x : c) x = u(rng);
  return c;
}

std::vector<float> cpu_decode(const jb::VQVAE& m, const std::vector<int32_t>& codes, int n, int t, double* seconds = nullptr) {
  jb::ThreadPool pool(1);
  jb::Progress progress;
  const auto t0 = std::chrono::steady_clock::now();
  jb::Buffer<float> out = m.decode(codes.data(), n, t, 0, pool, progress);
  if (seconds) *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return std::vector<float>(out.data(), out.data() + size_t(n) * t * m.hop_length(0));
}

struct ProgressLog {
  int calls = 0, stop_at = -1;
  double last_done = 0, total = 0;
  bool monotone = true;
};
int on_progress(void* user, double done, double total) {
  ProgressLog* p = static_cast<ProgressLog*>(user);
  ++p->calls;
  if (done < p->last_done) p->monotone = false;
  p->last_done = done;
  p->total = total;
  return p->stop_at >= 0 && p->calls >= p->stop_at ? 1 : 0;
}

double g_last_cpu_seconds = 0;  // process CPU time of the last gpu_decode (the emulator's work)

int gpu_decode(jb_cuda_vqvae* vq, const std::vector<int32_t>& codes, int n, int t, int hop, std::vector<float>& out, ProgressLog* log = nullptr,
               double* seconds = nullptr) {
  out.assign(size_t(n) * t * hop, std::nanf(""));
  jb_cuda_vq_decode_args a;
  std::memset(&a, 0, sizeof a);
  a.n = n;
  a.t = t;
  a.codes = codes.data();
  a.out = out.data();
  if (log) {
    a.progress = on_progress;
    a.progress_user = log;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const std::clock_t c0 = std::clock();
  const int rc = api->vqvae_decode(vq, &a);
  if (seconds) *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  g_last_cpu_seconds = double(std::clock() - c0) / CLOCKS_PER_SEC;
  return rc;
}

double rel_err(const std::vector<float>& got, const std::vector<float>& want) {
  double worst = 0, mag = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    mag = std::max(mag, std::fabs(double(want[i])));
    const double d = std::fabs(double(got[i]) - want[i]);
    worst = std::max(worst, std::isnan(d) ? INFINITY : d);
  }
  return worst / std::max(mag, 1e-30);
}

constexpr double kTol = 1e-5;

// Decodes random codes on both engines and compares; returns the relative error.
double compare(jb_cuda_context* ctx, const Decoder& d, const char* name, int n, int t) {
  auto cpu = cpu_model(d);
  auto desc = abi_desc(d, name);
  jb_cuda_vqvae* vq = nullptr;
  API_OK(api->vqvae_create(ctx, &desc->desc, &vq));
  const auto codes = random_codes(n, t, d.bins);
  const auto want = cpu_decode(*cpu, codes, n, t);
  std::vector<float> got;
  ProgressLog log;
  API_OK(gpu_decode(vq, codes, n, t, d.hop, got, &log));
  const double err = rel_err(got, want);
  CHECK(err <= kTol, "%s n=%d t=%d: relative error %.3e", name, n, t, err);
  CHECK(log.calls == int(d.layers.size()) && log.monotone && std::fabs(log.last_done - log.total) <= 1e-9 * log.total,
        "%s: progress once per layer (%d calls for %zu layers), monotone, ending at the total", name, log.calls, d.layers.size());
  const double flops = cpu->decode_flops(n, t, 0);
  CHECK(std::fabs(log.total - flops) <= 1e-9 * flops, "%s: one pass: progress total %.6g == the engine's decode_flops %.6g", name, log.total, flops);
  api->vqvae_free(vq);
  std::printf("  %-40s n=%d t=%-5d hop=%-4d %3zu layers: rel err %.2e\n", name, n, t, d.hop, d.layers.size(), err);
  return err;
}

uint64_t free_now(jb_cuda_context* ctx, uint64_t* held = nullptr) {
  uint64_t h = 0, f = 0, total = 0;
  API_OK(api->memory_info(ctx, &h, &f, &total));
  if (held) *held = h;
  return f;
}

// A buffer that leaves about `leave` bytes of the device free.
jb_cuda_buffer* fill_device(jb_cuda_context* ctx, uint64_t leave) {
  const uint64_t f = free_now(ctx);
  CHECK(f > leave + (1u << 20), "room to fill: %llu free", (unsigned long long)f);
  jb_cuda_buffer* b = nullptr;
  for (uint64_t take = f - leave; take > (1u << 20); take -= 4096)
    if (api->buffer_alloc(ctx, take, "the test's filler", &b) == JB_CUDA_OK) return b;
  CHECK(false, "could not fill the device");
  return nullptr;
}

void test_models(jb_cuda_context* ctx) {
  std::printf("decoders, GPU vs the CPU engine (tolerance %.0e relative to max |cpu|):\n", kTol);
  double worst = 0;
  const Hparams def;  // the default model
  const int ts[3] = {150, 40, 12};
  for (int level = 0; level < 3; ++level)
    for (int n = 1; n <= 3; ++n) {
      const Decoder d = make_decoder(def, level);
      const std::string name = "default level " + std::to_string(level);
      worst = std::max(worst, compare(ctx, d, name.c_str(), n, ts[level] + 7 * n));
    }
  Hparams off;  // official-like: hvqvae_multipliers (2, 1, 1), dilation_cycle 4, m_conv 2, res_scale 1/sqrt(depth)
  off.width = 32;
  off.depth = 4;
  off.mult = {2, 1, 1};
  off.cycle = 4;
  off.m_conv = 2.0;
  off.bins = 2048;
  off.res_scale = float(1.0 / std::sqrt(8.0));
  worst = std::max(worst, compare(ctx, make_decoder(off, 0), "official-like level 0 (x2, cycle 4, m_conv 2)", 2, 90));
  off.res_scale = 0.5f;
  off.reverse = false;
  worst = std::max(worst, compare(ctx, make_decoder(off, 1), "official-like level 1 (forward dilations)", 1, 30));
  Hparams odd;
  odd.emb = 13;
  odd.width = 24;
  odd.depth = 3;
  odd.m_conv = 1.5;
  odd.growth = 2;
  odd.bins = 77;
  odd.res_scale = 0.7f;
  odd.downs = {2, 1};
  odd.strides = {4, 2};
  worst = std::max(worst, compare(ctx, make_decoder(odd, 1), "odd (emb 13, width 24, m_conv 1.5, stride 4)", 3, 41));
  worst = std::max(worst, compare(ctx, make_decoder(def, 0), "default level 0, one code", 2, 1));
  std::printf("decoders: max rel err %.2e\n", worst);
}

void test_chunked(jb_cuda_context* ctx) {
  const Hparams def;
  const Decoder d = make_decoder(def, 0);
  auto cpu = cpu_model(d);
  auto desc = abi_desc(d, "default level 0 (chunked)");
  jb_cuda_vqvae* vq = nullptr;
  API_OK(api->vqvae_create(ctx, &desc->desc, &vq));
  const int n = 2, t = 700;
  const auto codes = random_codes(n, t, d.bins);
  const auto want = cpu_decode(*cpu, codes, n, t);
  std::vector<float> whole, chunked;
  ProgressLog one, many;
  API_OK(gpu_decode(vq, codes, n, t, d.hop, whole, &one));
  uint64_t held_one = 0;
  free_now(ctx, &held_one);
  setenv("JUKEBOX_CUDA_VQ_WORKSPACE", "2MiB", 1);
  jb_cuda_vqvae* vq2 = nullptr;  // a fresh model: the workspace is grow-only
  API_OK(api->vqvae_create(ctx, &desc->desc, &vq2));
  API_OK(gpu_decode(vq2, codes, n, t, d.hop, chunked, &many));
  uint64_t held_two = 0;
  free_now(ctx, &held_two);
  unsetenv("JUKEBOX_CUDA_VQ_WORKSPACE");
  const double flops = cpu->decode_flops(n, t, 0);
  const int chunks = many.calls / int(d.layers.size());
  CHECK(many.calls % int(d.layers.size()) == 0 && chunks > 3, "chunked: %d progress calls for %zu layers", many.calls, d.layers.size());
  CHECK(many.total > 1.5 * flops && std::fabs(one.total - flops) <= 1e-9 * flops, "the halos are recomputed: %.4g vs %.4g FLOPs", many.total, flops);
  CHECK(held_two - held_one < held_one, "the chunked model's workspace (%llu bytes with the weights) is below the one-pass one's",
        (unsigned long long)(held_two - held_one));
  CHECK(std::memcmp(whole.data(), chunked.data(), whole.size() * sizeof(float)) == 0, "chunked decode equals the one-pass decode bit for bit");
  const double err = rel_err(chunked, want);
  CHECK(err <= kTol, "chunked vs CPU: %.3e", err);
  api->vqvae_free(vq);
  api->vqvae_free(vq2);
  std::printf("chunked decode (JUKEBOX_CUDA_VQ_WORKSPACE=2MiB): n=%d t=%d in %d chunks (%.2fx the FLOPs), equal bit for bit to one pass, rel err vs CPU %.2e\n",
              n, t, chunks, many.total / flops, err);
}

void test_errors(jb_cuda_context* ctx) {
  const Hparams def;
  const Decoder d = make_decoder(def, 0);
  auto desc = abi_desc(d, "default level 0 (errors)");
  jb_cuda_vqvae* vq = nullptr;
  API_OK(api->vqvae_create(ctx, &desc->desc, &vq));
  const int n = 2, t = 50;
  std::vector<float> out;
  // bad codes
  auto codes = random_codes(n, t, d.bins);
  codes[57] = d.bins;
  CHECK(gpu_decode(vq, codes, n, t, d.hop, out) == JB_CUDA_ERR_INVALID_ARGUMENT, "code == bins refused");
  std::string msg = api->last_error();
  CHECK(msg.find("code 512 at index 57 (row 1, step 7) is outside [0, 512)") != std::string::npos && msg.find("default level 0 (errors)") != std::string::npos,
        "bad code message: %s", msg.c_str());
  std::printf("bad codes: \"%s\"\n", msg.c_str());
  codes[57] = -3;
  CHECK(gpu_decode(vq, codes, n, t, d.hop, out) == JB_CUDA_ERR_INVALID_ARGUMENT, "a negative code refused");
  CHECK(std::strstr(api->last_error(), "code -3 at index 57") != nullptr, "%s", api->last_error());
  codes[57] = 0;
  // abort from the progress callback, then a normal decode on the same model
  ProgressLog stop;
  stop.stop_at = 3;
  CHECK(gpu_decode(vq, codes, n, t, d.hop, out, &stop) == JB_CUDA_ERR_ABORTED, "abort via progress: %s", api->last_error());
  msg = api->last_error();
  CHECK(stop.calls == 3 && msg.find("aborted by the progress callback after layer 3 of") != std::string::npos, "abort message (%d calls): %s", stop.calls,
        msg.c_str());
  std::printf("abort: \"%s\"\n", msg.c_str());
  auto cpu = cpu_model(d);
  API_OK(gpu_decode(vq, codes, n, t, d.hop, out));
  CHECK(rel_err(out, cpu_decode(*cpu, codes, n, t)) <= kTol, "a decode after an abort is right");
  // null / empty arguments
  jb_cuda_vq_decode_args a;
  std::memset(&a, 0, sizeof a);
  CHECK(api->vqvae_decode(vq, &a) == JB_CUDA_ERR_INVALID_ARGUMENT, "no codes refused");
  api->vqvae_free(vq);

  // invalid descriptions
  auto bad = abi_desc(d, "bad");
  jb_cuda_vqvae* none = nullptr;
  bad->layers[1].a.cin = 33;
  CHECK(api->vqvae_create(ctx, &bad->desc, &none) == JB_CUDA_ERR_INVALID_ARGUMENT && none == nullptr, "channel chain");
  CHECK(std::strstr(api->last_error(), "layer 1 (residual) conv_a: cin 33 does not match the 32 channels of its input") != nullptr, "%s", api->last_error());
  std::printf("invalid desc: \"%s\"\n", api->last_error());
  bad = abi_desc(d, "bad");
  bad->layers[0].a.kernel = 0;
  CHECK(api->vqvae_create(ctx, &bad->desc, &none) == JB_CUDA_ERR_INVALID_ARGUMENT, "kernel 0");
  CHECK(std::strstr(api->last_error(), "layer 0 (conv): kernel 0") != nullptr, "%s", api->last_error());
  bad = abi_desc(d, "bad");
  bad->layers[2].a.dilation = 0;
  CHECK(api->vqvae_create(ctx, &bad->desc, &none) == JB_CUDA_ERR_INVALID_ARGUMENT && std::strstr(api->last_error(), "dilation 0") != nullptr, "%s",
        api->last_error());
  bad = abi_desc(d, "bad");
  bad->layers[2].a.pad = 1;  // a residual conv that changes the length
  CHECK(api->vqvae_create(ctx, &bad->desc, &none) == JB_CUDA_ERR_INVALID_ARGUMENT && std::strstr(api->last_error(), "must keep the length") != nullptr, "%s",
        api->last_error());
  bad = abi_desc(d, "bad");
  bad->desc.hop = 16;
  CHECK(api->vqvae_create(ctx, &bad->desc, &none) == JB_CUDA_ERR_INVALID_ARGUMENT &&
            std::strstr(api->last_error(), "upsamples by 8 samples per code but hop is 16") != nullptr,
        "%s", api->last_error());
  bad = abi_desc(d, "bad");
  bad->layers.back().a.cout = 2;
  bad->layers.back().a.w = d.layers[1].a.w.data();
  CHECK(api->vqvae_create(ctx, &bad->desc, &none) == JB_CUDA_ERR_INVALID_ARGUMENT && std::strstr(api->last_error(), "out_channels is 1") != nullptr, "%s",
        api->last_error());
  std::printf("errors: bad codes, abort, invalid descriptions\n");
}

void test_memory(jb_cuda_context* ctx) {
  const Hparams def;
  const Decoder d = make_decoder(def, 0);
  auto desc = abi_desc(d, "default level 0 (memory)");
  uint64_t held0 = 0;
  const uint64_t free0 = free_now(ctx, &held0);
  jb_cuda_vqvae* vq = nullptr;
  API_OK(api->vqvae_create(ctx, &desc->desc, &vq));
  uint64_t held1 = 0;
  const uint64_t free1 = free_now(ctx, &held1);
  size_t weights = size_t(d.bins) * d.emb;
  for (const LayerW& l : d.layers) weights += l.a.w.size() + l.a.b.size() + l.b.w.size() + l.b.b.size();
  weights *= sizeof(float);
  CHECK(held1 - held0 >= weights && held1 - held0 < weights + 65536 && free0 - free1 >= weights, "create holds the weights: %llu bytes held for %zu",
        (unsigned long long)(held1 - held0), weights);
  const auto codes = random_codes(1, 300, d.bins);
  std::vector<float> out;
  API_OK(gpu_decode(vq, codes, 1, 300, d.hop, out));
  uint64_t held2 = 0;
  const uint64_t free2 = free_now(ctx, &held2);
  CHECK(held2 > held1 && free2 < free1, "the decode's workspace is held: %llu bytes", (unsigned long long)(held2 - held1));
  API_OK(gpu_decode(vq, codes, 1, 300, d.hop, out));
  uint64_t held3 = 0;
  free_now(ctx, &held3);
  CHECK(held3 == held2, "the workspace is reused (grow-only)");
  api->vqvae_free(vq);
  uint64_t held4 = 0;
  const uint64_t free4 = free_now(ctx, &held4);
  CHECK(held4 == held0 && free4 == free0, "free returns everything: held %llu -> %llu, free %llu -> %llu", (unsigned long long)held0,
        (unsigned long long)held4, (unsigned long long)free0, (unsigned long long)free4);

  // out of memory at create: the device filled but for 64 KiB (the weights are ~420 KiB)
  jb_cuda_buffer* filler = fill_device(ctx, 64 << 10);
  jb_cuda_vqvae* none = nullptr;
  CHECK(api->vqvae_create(ctx, &desc->desc, &none) == JB_CUDA_ERR_OUT_OF_MEMORY && none == nullptr, "create refused: %s", api->last_error());
  std::string msg = api->last_error();
  const size_t asked_at = msg.find(" need "), asked = asked_at == std::string::npos ? 0 : size_t(std::atoll(msg.c_str() + msg.find('(', asked_at) + 1));
  CHECK(msg.find("out of GPU memory creating VQ-VAE decoder 'default level 0 (memory)'") == 0 && asked >= weights && asked < weights + 65536 &&
            msg.find(" bytes) free of ") != std::string::npos,
        "create OOM message: %s", msg.c_str());
  std::printf("out of memory at create: \"%s\"\n", msg.c_str());
  api->buffer_free(filler);
  // out of memory at decode (a fresh model: no workspace yet)
  API_OK(api->vqvae_create(ctx, &desc->desc, &vq));
  filler = fill_device(ctx, 64 << 10);
  CHECK(gpu_decode(vq, codes, 1, 300, d.hop, out) == JB_CUDA_ERR_OUT_OF_MEMORY, "decode refused: %s", api->last_error());
  msg = api->last_error();
  CHECK(msg.find("out of GPU memory allocating") == 0 && msg.find("for the activations of VQ-VAE decoder 'default level 0 (memory)'") != std::string::npos &&
            msg.find(" bytes) free of ") != std::string::npos && msg.find("this model holds") != std::string::npos,
        "decode OOM message: %s", msg.c_str());
  std::printf("out of memory at decode: \"%s\"\n", msg.c_str());
  api->buffer_free(filler);
  API_OK(gpu_decode(vq, codes, 1, 300, d.hop, out));  // and with the memory back it decodes
  api->vqvae_free(vq);
  CHECK(free_now(ctx) == free0, "everything returned");

  // context_destroy frees the models still alive
  jb_cuda_context* c2 = nullptr;
  API_OK(api->context_create(0, &c2));
  jb_cuda_vqvae *v1 = nullptr, *v2 = nullptr;
  API_OK(api->vqvae_create(c2, &desc->desc, &v1));
  API_OK(api->vqvae_create(c2, &desc->desc, &v2));
  API_OK(gpu_decode(v2, codes, 1, 300, d.hop, out));
  CHECK(free_now(ctx) < free0, "two models held");
  api->context_destroy(c2);
  CHECK(free_now(ctx) == free0, "context_destroy freed its models");
  std::printf("memory: create holds %zu bytes of weights, the workspace is grow-only, free and context_destroy return everything\n", weights);
}

void test_timing(jb_cuda_context* ctx, bool emulated) {
  const Hparams def;
  const Decoder d = make_decoder(def, 0);
  auto cpu = cpu_model(d);
  auto desc = abi_desc(d, "default level 0 (3 s)");
  jb_cuda_vqvae* vq = nullptr;
  API_OK(api->vqvae_create(ctx, &desc->desc, &vq));
  const int t = (3 * 22050 + 7) / 8;  // 3 s at 22.05 kHz, hop 8
  const auto codes = random_codes(1, t, d.bins);
  double cpu_s = 0, gpu_s = 0;
  const auto want = cpu_decode(*cpu, codes, 1, t, &cpu_s);
  std::vector<float> got;
  API_OK(gpu_decode(vq, codes, 1, t, d.hop, got, nullptr, &gpu_s));
  const double gpu_cpu_s = g_last_cpu_seconds;
  const double err = rel_err(got, want);
  CHECK(err <= kTol, "3 s: rel err %.3e", err);
  api->vqvae_free(vq);
  std::printf("3 s of default-model audio at level 0 (t=%d codes, %d samples, %.2f GFLOP): %s %.2f s (%.2f s of CPU time), CPU engine (1 thread) %.2f s, rel err %.2e\n",
              t, t * d.hop, cpu->decode_flops(1, t, 0) * 1e-9, emulated ? "emulated" : "GPU", gpu_s, gpu_cpu_s, cpu_s, err);
}

}  // namespace

int main(int argc, char** argv) {
  const bool timing = !(argc == 3 && std::strcmp(argv[2], "--no-timing") == 0);
  if (argc != 2 && timing) {
    std::fprintf(stderr, "usage: %s path/to/libjukebox-cuda.so [--no-timing]\n", argv[0]);
    return 2;
  }
  void* h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  CHECK(h != nullptr, "dlopen %s: %s", argv[1], dlerror());
  auto version = reinterpret_cast<jb_cuda_api_version_fn>(dlsym(h, "jb_cuda_api_version"));
  auto get = reinterpret_cast<jb_cuda_get_api_fn>(dlsym(h, "jb_cuda_get_api"));
  CHECK(version && get && version() == JB_CUDA_API_VERSION, "API version");
  api = get(JB_CUDA_API_VERSION);
  CHECK(api && api->struct_size >= sizeof(jb_cuda_api), "function table");
  const uint64_t caps = api->capabilities();
  CHECK(caps & JB_CUDA_CAP_VQVAE_MODEL, "JB_CUDA_CAP_VQVAE_MODEL is set: 0x%llx", (unsigned long long)caps);
  jb_cuda_device_info info;
  API_OK(api->device_info(0, &info));
  std::printf("device 0: %s\n", info.name);
  jb_cuda_context* ctx = nullptr;
  API_OK(api->context_create(0, &ctx));
  test_models(ctx);
  test_chunked(ctx);
  test_errors(ctx);
  test_memory(ctx);
  if (timing) test_timing(ctx, (caps & JB_CUDA_CAP_EMULATED) != 0);
  api->context_destroy(ctx);
  std::printf("ok %ld checks\n", g_checks);
  return 0;
}
