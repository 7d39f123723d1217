// Device parity of the CUDA kernels (cuda/kernels/) against their CPU references
// (cuda/kernels/ops_ref.h, themselves equal to the CPU engine's ops: kernels_ref_test.cc):
// random inputs over shapes the models use and odd ones, each case's max error printed next
// to its tolerance, and the GEMV checked to be deterministic (two runs, same bits). Built
// with the library (build/cuda/jukebox-cuda-parity; test/cuda-parity.test.ts runs it where a
// GPU is present) and by the emulation build (build/cuda-emu/jukebox-cuda-parity;
// test/cuda-emu.test.ts runs it in CI, both thread orders). Exit 0 when every case is within
// tolerance. Output: one line per case, "ok   <case> max err ..." or "FAIL <case> ...", then
// "parity ok: N cases, 0 outside tolerance" (or "FAILED: ...").
//
// Options:
//   --size full|small  full: the official models' shapes (5b: width 4800, state 1200, MLP
//                      4800, 8 heads, n_ctx 8192 in 128 blocks; upsampler: 1920, 480, 1920, 1
//                      head, 128 blocks); small: the same case types at shapes an emulated
//                      run does in seconds. Default: full on a GPU, small under emulation.
//   --only G[,G...]    run only these groups: gemv layer_norm gelu residual attn_decode
//                      attn_prefill conv dequantize sampling layer graph gemm gemm_wmma
//                      attn_chunk embed
//   --list             print the groups and exit
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../csrc/core/philox.h"
#include "../../csrc/cpu/attention.h"
#include "../../csrc/cpu/conv1d.h"
#include "../../csrc/cpu/sampling.h"
#include "../../common/half_convert.h"
#include "../kernels/decode_layer.h"
#include "../kernels/kernels.h"
#include "../kernels/ops_ref.h"

namespace {

int g_failed = 0, g_cases = 0;

#define CUDA_OK(call)                                                                      \
  do {                                                                                     \
    cudaError_t e_ = (call);                                                               \
    if (e_ != cudaSuccess) {                                                               \
      std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorName(e_), __FILE__, __LINE__, #call); \
      std::exit(2);                                                                        \
    }                                                                                      \
  } while (0)

template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) { CUDA_OK(cudaMalloc(&p, std::max<size_t>(1, count) * sizeof(T))); }
  Dev(const std::vector<T>& h) : Dev(h.size()) { CUDA_OK(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice)); }
  ~Dev() { cudaFree(p); }
  std::vector<T> get() const {
    std::vector<T> h(n);
    CUDA_OK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
};

void report(const std::string& name, double err, double tol) {
  ++g_cases;
  const bool ok = err <= tol;
  if (!ok) ++g_failed;
  std::printf("%-4s %-52s max err %.3e (tolerance %.1e)\n", ok ? "ok" : "FAIL", name.c_str(), err, tol);
}

// Inputs: a fixed-seed xorshift generator and Box-Muller normals (the full shapes draw
// hundreds of millions of weights; std::normal_distribution took most of an emulated run).
struct Rng {
  uint64_t s = 0x9e3779b97f4a7c15ull;
  bool have = false;
  float spare = 0.0f;
  uint32_t operator()() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return uint32_t(s >> 32);
  }
  float normal() {
    if (have) {
      have = false;
      return spare;
    }
    const double u1 = (double((*this)()) + 1.0) / 4294967297.0, u2 = double((*this)()) / 4294967296.0;
    const double r = std::sqrt(-2.0 * std::log(u1)), t = 6.283185307179586 * u2;
    spare = float(r * std::sin(t));
    have = true;
    return float(r * std::cos(t));
  }
  // uniform in [-sqrt(3), sqrt(3)): unit variance, for weights (cheaper than normals)
  float symmetric() { return (float((*this)() >> 8) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * 1.7320508f; }
} rng;

std::vector<float> randn(size_t n, float scale = 1.0f) {
  std::vector<float> v(n);
  for (auto& x : v) x = rng.normal() * scale;
  return v;
}

void gemv_case(int M, int K, int N, bool transposed, int blocks_wanted) {
  const std::vector<float> x = randn(size_t(M) * K), bias = randn(N);
  std::vector<uint16_t> w(size_t(K) * N);
  for (auto& v : w) v = jb::gpu::float_to_half_rne(rng.normal() / std::sqrt(float(K)));
  std::vector<float> want(size_t(M) * N);
  jb::gpu_ref::gemv_f16(x.data(), M, K, N, w.data(), transposed, bias.data(), want.data());
  // fp32 accumulation vs the reference's double: error bounded by K * eps * sum |x w|
  // (the same sum of |x w| through the reference, k outer: weights walked in memory order)
  std::vector<float> ax(x);
  std::vector<uint16_t> aw(w);
  for (auto& v : ax) v = std::fabs(v);
  for (auto& v : aw) v = uint16_t(v & 0x7fffu);
  std::vector<float> magf(size_t(M) * N);
  jb::gpu_ref::gemv_f16(ax.data(), M, K, N, aw.data(), transposed, nullptr, magf.data());
  const std::vector<double> mag(magf.begin(), magf.end());
  Dev<float> dx(x), db(bias), dy(size_t(M) * N);
  Dev<uint16_t> dw(w);
  Dev<float> work(std::max<size_t>(1, jb::cuda::gemv_workspace_floats(M, K, N, blocks_wanted)));
  const __half* wp = reinterpret_cast<const __half*>(dw.p);
  CUDA_OK(jb::cuda::gemv_f16(dx.p, M, K, N, wp, transposed, db.p, dy.p, work.p, blocks_wanted, 0));
  CUDA_OK(cudaDeviceSynchronize());
  const std::vector<float> got = dy.get();
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(double(got[i]) - want[i]) / (1e-6 + mag[i] + std::fabs(bias[i % N])));
  char name[128];
  std::snprintf(name, sizeof name, "gemv fp16 %s M=%d K=%d N=%d", transposed ? "(N,K)" : "(K,N)", M, K, N);
  report(name, worst, 4e-6 * std::sqrt(double(K)) + 1e-6);  // relative to sum |x w| + |b|
  // deterministic: a second run gives the same bits
  CUDA_OK(jb::cuda::gemv_f16(dx.p, M, K, N, wp, transposed, db.p, dy.p, work.p, blocks_wanted, 0));
  CUDA_OK(cudaDeviceSynchronize());
  const std::vector<float> again = dy.get();
  report(std::string(name) + " rerun bits", std::memcmp(again.data(), got.data(), got.size() * 4) == 0 ? 0.0 : 1.0, 0.0);
}

void layer_norm_case(int rows, int width, bool in_place) {
  std::vector<float> x = randn(size_t(rows) * width, 3.0f);
  for (auto& v : x) v += 0.7f;
  const std::vector<float> gw = randn(width), gb = randn(width);
  std::vector<float> want(x.size());
  jb::gpu_ref::layer_norm(x.data(), rows, width, gw.data(), gb.data(), want.data());
  Dev<float> dx(x), dg(gw), dbb(gb), dy(x.size());
  CUDA_OK(jb::cuda::layer_norm(dx.p, rows, width, dg.p, dbb.p, in_place ? dx.p : dy.p, 0));
  CUDA_OK(cudaDeviceSynchronize());
  const std::vector<float> got = in_place ? dx.get() : dy.get();
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(double(got[i]) - want[i]) / (1.0 + std::fabs(gw[i % width]) * 4 + std::fabs(gb[i % width])));
  char name[128];
  std::snprintf(name, sizeof name, "layer_norm rows=%d width=%d%s", rows, width, in_place ? " in place" : "");
  report(name, worst, 2e-6 * std::sqrt(double(width)) + 2e-6);
}

void gelu_case(int rows, int width, bool with_bias) {
  std::vector<float> x = randn(size_t(rows) * width, 3.0f), want = x;
  const std::vector<float> bias = randn(width);
  jb::gpu_ref::bias_quick_gelu(want.data(), with_bias ? bias.data() : nullptr, rows, width);
  Dev<float> dx(x), db(bias);
  CUDA_OK(jb::cuda::bias_quick_gelu(dx.p, with_bias ? db.p : nullptr, rows, width, 0));
  CUDA_OK(cudaDeviceSynchronize());
  const std::vector<float> got = dx.get();
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(double(got[i]) - want[i]) / (1e-30 + std::max(1e-3, std::fabs(double(want[i])))));
  char name[128];
  std::snprintf(name, sizeof name, "bias + quick_gelu rows=%d width=%d%s", rows, width, with_bias ? "" : " (no bias)");
  report(name, worst, 1e-6);  // expf vs glibc expf: a few ulp
}

void residual_case(size_t n, float scale) {
  std::vector<float> h = randn(n), a = randn(n), m = randn(n), want = h;
  jb::gpu_ref::residual(want.data(), a.data(), m.data(), n, scale);
  Dev<float> dh(h), da(a), dm(m);
  CUDA_OK(jb::cuda::residual(dh.p, da.p, dm.p, n, scale, 0));
  CUDA_OK(cudaDeviceSynchronize());
  const std::vector<float> got = dh.get();
  char name[128];
  std::snprintf(name, sizeof name, "residual n=%zu res_scale=%g (bit-exact)", n, scale);
  report(name, std::memcmp(got.data(), want.data(), n * 4) == 0 ? 0.0 : 1.0, 0.0);
}

// The decode step's attention at several positions of a window for one type: the caches
// filled through kv_store (enc-dec: the host fill, as at upload), then every position's query.
void attn_case(int func, int len, int bc, int prime, int enc, int n, int heads, int dh, int blocks_wanted) {
  jb::gpu::AttnGeom g;
  g.func = func;
  g.len = len;
  g.block_ctx = bc;
  g.prime_len = prime;
  g.enc_len = enc;
  const int st = heads * dh;
  const size_t cache = jb::gpu::kv_elements(g, n, heads, dh);
  std::vector<uint16_t> kc(cache, 0), vc(cache, 0);
  Dev<uint16_t> dkc(kc), dvc(vc);
  if (func == 6) {
    const std::vector<float> k = randn(size_t(n) * enc * st), v = randn(size_t(n) * enc * st);
    jb::gpu_ref::kv_fill_encoder(enc, n, heads, dh, k.data(), v.data(), st, kc.data(), vc.data());
    CUDA_OK(cudaMemcpy(dkc.p, kc.data(), cache * 2, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(dvc.p, vc.data(), cache * 2, cudaMemcpyHostToDevice));
  }
  Dev<float> dq(size_t(n) * st), dk(size_t(n) * st), dv(size_t(n) * st), dout(size_t(n) * st);
  size_t work_floats = 1;
  for (int pos = 0; pos < len; ++pos) work_floats = std::max(work_floats, jb::cuda::attn_decode_workspace_floats(g, pos, n, heads, dh, blocks_wanted));
  Dev<float> work(work_floats);
  double worst = 0, worst_store = 0;
  int checked = 0;
  for (int pos = 0; pos < len; ++pos) {
    const std::vector<float> q = randn(size_t(n) * st), k = randn(size_t(n) * st), v = randn(size_t(n) * st);
    CUDA_OK(cudaMemcpy(dq.p, q.data(), q.size() * 4, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(dk.p, k.data(), k.size() * 4, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(dv.p, v.data(), v.size() * 4, cudaMemcpyHostToDevice));
    jb::gpu_ref::kv_store(g, pos, n, heads, dh, k.data(), v.data(), st, kc.data(), vc.data());
    CUDA_OK(jb::cuda::kv_store(g, pos, n, heads, dh, dk.p, dv.p, st, reinterpret_cast<__half*>(dkc.p), reinterpret_cast<__half*>(dvc.p), 0));
    // check a spread of positions (every one is stored; attention is the costly part to check)
    const bool check = pos < 3 || pos % bc == 0 || pos % bc == bc - 1 || pos == len - 1 || pos % 97 == 0;
    if (!check) continue;
    CUDA_OK(jb::cuda::attn_decode(g, pos, n, heads, dh, dq.p, st, reinterpret_cast<const __half*>(dkc.p), reinterpret_cast<const __half*>(dvc.p),
                                  dout.p, work.p, blocks_wanted, 0));
    CUDA_OK(cudaDeviceSynchronize());
    std::vector<float> want(size_t(n) * st);
    jb::gpu_ref::attend_decode(g, pos, n, heads, dh, q.data(), kc.data(), vc.data(), want.data());
    const std::vector<float> got = dout.get();
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(double(got[i]) - want[i]));
    const std::vector<uint16_t> kc_dev = dkc.get(), vc_dev = dvc.get();
    worst_store = std::max(worst_store, (std::memcmp(kc_dev.data(), kc.data(), cache * 2) == 0 && std::memcmp(vc_dev.data(), vc.data(), cache * 2) == 0) ? 0.0 : 1.0);
    ++checked;
  }
  char name[160];
  std::snprintf(name, sizeof name, "attn_decode type %d len=%d bc=%d n=%d heads=%d dh=%d (%d positions)", func, len, bc, n, heads, dh, checked);
  report(name, worst, 3e-5);  // unit-normal values: the output is a convex combination of them
  std::snprintf(name, sizeof name, "kv_store type %d caches bit-exact", func);
  report(name, worst_store, 0.0);
}

std::vector<uint16_t> randh(size_t n, float scale) {
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = jb::gpu::float_to_half_rne(rng.symmetric() * scale);
  return v;
}

// A whole layer's decode steps over `steps` positions, GPU chain vs the reference chain,
// h compared after every step (relative to its largest value). The position is in device
// memory (written before each step). With `graph`: the step (and advance_position) is
// captured once on a non-blocking stream and the graph replayed for every position, next to
// a second device chain of direct launches: the replay must equal the direct launches bit
// for bit and the reference within tolerance (a graph that baked in its position, KV row or
// split count would redo the captured position).
void layer_case(int func, int width, int state, int mlp, int heads, int len, int blocks, int prime, int enc, int n, int steps, int blocks_wanted,
                bool graph = false) {
  jb::cuda::DevDims d;
  d.width = width;
  d.state = state;
  d.mlp = mlp;
  d.heads = heads;
  d.len = len;
  d.blocks = blocks;
  d.prime_len = prime;
  d.enc_len = enc;
  jb::gpu::AttnGeom g;
  g.func = func;
  g.len = len;
  g.block_ctx = len / blocks;
  g.prime_len = prime;
  g.enc_len = enc;
  const int ld = func == 6 ? state : 3 * state, dh = state / heads;
  std::vector<float> ln0w = randn(width, 0.2f), ln1w = randn(width, 0.2f);
  for (auto& x : ln0w) x += 1.0f;
  for (auto& x : ln1w) x += 1.0f;
  const std::vector<float> ln0b = randn(width, 0.1f), ln1b = randn(width, 0.1f);
  const std::vector<uint16_t> wa = randh(size_t(width) * ld, 1.0f / std::sqrt(float(width))), wp = randh(size_t(state) * width, 1.0f / std::sqrt(float(state))),
                              wf = randh(size_t(width) * mlp, 1.0f / std::sqrt(float(width))), wm = randh(size_t(mlp) * width, 1.0f / std::sqrt(float(mlp)));
  const std::vector<float> ba = randn(ld, 0.1f), bp = randn(width, 0.1f), bf = randn(mlp, 0.1f), bm = randn(width, 0.1f);
  const size_t cache = jb::gpu::kv_elements(g, n, heads, dh);
  std::vector<uint16_t> kc(cache, 0), vc(cache, 0);
  if (func == 6) {
    const std::vector<float> k = randn(size_t(n) * enc * state), v = randn(size_t(n) * enc * state);
    jb::gpu_ref::kv_fill_encoder(enc, n, heads, dh, k.data(), v.data(), state, kc.data(), vc.data());
  }
  Dev<float> d_ln0w(ln0w), d_ln0b(ln0b), d_ln1w(ln1w), d_ln1b(ln1b), d_ba(ba), d_bp(bp), d_bf(bf), d_bm(bm);
  Dev<uint16_t> d_wa(wa), d_wp(wp), d_wf(wf), d_wm(wm), d_kc(kc), d_vc(vc), d_kc2(kc), d_vc2(vc);
  auto hp = [](const Dev<uint16_t>& x) { return reinterpret_cast<__half*>(x.p); };
  jb::cuda::DevLayer l;
  l.attn_func = func;
  l.ln0_w = d_ln0w.p;
  l.ln0_b = d_ln0b.p;
  l.ln1_w = d_ln1w.p;
  l.ln1_b = d_ln1b.p;
  l.c_attn = {hp(d_wa), d_ba.p};
  l.c_proj = {hp(d_wp), d_bp.p};
  l.mlp_fc = {hp(d_wf), d_bf.p};
  l.mlp_proj = {hp(d_wm), d_bm.p};
  l.kc = hp(d_kc);
  l.vc = hp(d_vc);
  jb::cuda::DevLayer l2 = l;  // the direct-launch chain next to a graph: its own caches
  l2.kc = hp(d_kc2);
  l2.vc = hp(d_vc2);
  jb::gpu_ref::HostLayer r{func, ln0w.data(), ln0b.data(), ln1w.data(), ln1b.data(), wa.data(), ba.data(), wp.data(), bp.data(), wf.data(), bf.data(), wm.data(), bm.data(), kc.data(), vc.data()};
  const size_t scratch_floats = jb::cuda::decode_scratch_floats(d, n, blocks_wanted);
  Dev<float> scratch(scratch_floats), scratch2(scratch_floats), dh_(size_t(n) * width), dh2(size_t(n) * width);
  Dev<int32_t> dpos(1), dpos2(1);
  cudaStream_t s = nullptr;
  cudaGraphExec_t exec = nullptr;
  if (graph) {
    CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    const int32_t zero = 0;
    CUDA_OK(cudaMemcpyAsync(dpos.p, &zero, 4, cudaMemcpyHostToDevice, s));
    cudaGraph_t gr;
    CUDA_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    CUDA_OK(jb::cuda::decode_layer_step(l, d, dpos.p, n, dh_.p, scratch.p, blocks_wanted, s));
    CUDA_OK(jb::cuda::advance_position(dpos.p, s));
    CUDA_OK(cudaStreamEndCapture(s, &gr));
    CUDA_OK(cudaGraphInstantiate(&exec, gr, 0));
    CUDA_OK(cudaGraphDestroy(gr));
  }
  double worst = 0, differ = 0;
  for (int pos = 0; pos < steps; ++pos) {
    std::vector<float> h = randn(size_t(n) * width);
    std::vector<float> got(h.size()), direct(h.size());
    const int32_t p32 = pos;
    if (graph) {
      CUDA_OK(cudaMemcpyAsync(dh_.p, h.data(), h.size() * 4, cudaMemcpyHostToDevice, s));
      CUDA_OK(cudaGraphLaunch(exec, s));
      CUDA_OK(cudaMemcpyAsync(got.data(), dh_.p, got.size() * 4, cudaMemcpyDeviceToHost, s));
    }
    // direct launches on the legacy stream (a second chain when a graph runs)
    jb::cuda::DevLayer& ld_ = graph ? l2 : l;
    Dev<float>& hd = graph ? dh2 : dh_;
    Dev<int32_t>& pd = graph ? dpos2 : dpos;
    CUDA_OK(cudaMemcpy(hd.p, h.data(), h.size() * 4, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(pd.p, &p32, 4, cudaMemcpyHostToDevice));
    CUDA_OK(jb::cuda::decode_layer_step(ld_, d, pd.p, n, hd.p, graph ? scratch2.p : scratch.p, blocks_wanted, 0));
    jb::gpu_ref::decode_layer_step(r, width, state, mlp, heads, g, 1.0f, pos, n, h.data());
    CUDA_OK(cudaDeviceSynchronize());
    direct = hd.get();
    if (!graph) got = direct;
    else differ += std::memcmp(got.data(), direct.data(), got.size() * 4) != 0;
    double top = 1e-6;
    for (float v : h) top = std::max(top, double(std::fabs(v)));
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(double(got[i]) - h[i]) / top);
  }
  char name[200];
  if (graph) {
    CUDA_OK(cudaGraphExecDestroy(exec));
    CUDA_OK(cudaStreamDestroy(s));
    std::snprintf(name, sizeof name, "decode layer graph type %d w=%d s=%d m=%d heads=%d n=%d (one capture, %d replays)", func, width, state, mlp, heads, n,
                  steps);
    report(name, worst, 2e-4);
    std::snprintf(name, sizeof name, "decode layer graph type %d replays equal direct launches (bit-exact)", func);
    report(name, differ, 0.0);
    return;
  }
  std::snprintf(name, sizeof name, "decode layer type %d w=%d s=%d m=%d heads=%d n=%d (%d steps)", func, width, state, mlp, heads, n, steps);
  report(name, worst, 2e-4);  // fp32 chains vs double/fp32 references: relative to max |h|
}

// Tokens drawn on the device vs the engine's filtered_probs + draw_token at the same Philox
// uniform, over many positions: the share of tokens that differ (expected 0: a difference
// needs a uniform within rounding of a CDF boundary).
void sampling_case(int n, int bins, jb::cuda::Sampling p, float logit_scale, int positions) {
  const uint64_t seed = 977;
  const uint32_t stream_id = 2, offset = 5;
  Dev<float> dl(size_t(n) * bins);
  Dev<int32_t> dt(n);
  int differ = 0, total = 0;
  std::vector<double> probs;
  for (uint32_t pos = 0; pos < uint32_t(positions); ++pos) {
    const std::vector<float> logits = randn(size_t(n) * bins, logit_scale);
    CUDA_OK(cudaMemcpy(dl.p, logits.data(), logits.size() * 4, cudaMemcpyHostToDevice));
    CUDA_OK(jb::cuda::sample_tokens(dl.p, n, bins, p, seed, stream_id, offset, pos, dt.p, 0));
    CUDA_OK(cudaDeviceSynchronize());
    const std::vector<int32_t> got = dt.get();
    for (int b = 0; b < n; ++b) {
      jb::SamplingParams sp;
      sp.temperature = p.temperature;
      sp.top_k = p.top_k;
      sp.top_p = p.top_p;
      jb::filtered_probs(logits.data() + size_t(b) * bins, bins, sp, probs);
      const double u = jb::Philox4x32::uniform(seed, stream_id, offset + uint32_t(b), pos, 0x6a6b7878u);
      differ += got[b] != jb::draw_token(probs, u);
      ++total;
    }
  }
  char name[160];
  std::snprintf(name, sizeof name, "sampling bins=%d T=%.2f top_k=%d top_p=%.2f (%d draws, share differing)", bins, p.temperature, p.top_k, p.top_p, total);
  report(name, double(differ) / total, 0.0);
}

// Sampling captured once in a graph (position from device memory, advanced by the graph)
// and replayed over many positions: the engine's tokens at every position.
void sampling_graph_case(int n, int bins, jb::cuda::Sampling p, int positions) {
  const uint64_t seed = 4242;
  const uint32_t stream_id = 1, offset = 0;
  Dev<float> dl(size_t(n) * bins);
  Dev<int32_t> dt(n), dpos(1);
  cudaStream_t s;
  CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  const int32_t zero = 0;
  CUDA_OK(cudaMemcpyAsync(dpos.p, &zero, 4, cudaMemcpyHostToDevice, s));
  cudaGraph_t gr;
  cudaGraphExec_t exec;
  CUDA_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  CUDA_OK(jb::cuda::sample_tokens(dl.p, n, bins, p, seed, stream_id, offset, 0, dt.p, s, dpos.p));
  CUDA_OK(jb::cuda::advance_position(dpos.p, s));
  CUDA_OK(cudaStreamEndCapture(s, &gr));
  CUDA_OK(cudaGraphInstantiate(&exec, gr, 0));
  int differ = 0, total = 0;
  std::vector<double> probs;
  std::vector<int32_t> got(n);
  for (int pos = 0; pos < positions; ++pos) {
    const std::vector<float> logits = randn(size_t(n) * bins, 3.0f);
    CUDA_OK(cudaMemcpyAsync(dl.p, logits.data(), logits.size() * 4, cudaMemcpyHostToDevice, s));
    CUDA_OK(cudaGraphLaunch(exec, s));
    CUDA_OK(cudaMemcpyAsync(got.data(), dt.p, n * 4, cudaMemcpyDeviceToHost, s));
    CUDA_OK(cudaStreamSynchronize(s));
    for (int b = 0; b < n; ++b) {
      jb::SamplingParams sp;
      sp.temperature = p.temperature;
      sp.top_k = p.top_k;
      sp.top_p = p.top_p;
      jb::filtered_probs(logits.data() + size_t(b) * bins, bins, sp, probs);
      const double u = jb::Philox4x32::uniform(seed, stream_id, offset + uint32_t(b), uint32_t(pos), 0x6a6b7878u);
      differ += got[b] != jb::draw_token(probs, u);
      ++total;
    }
  }
  CUDA_OK(cudaGraphExecDestroy(exec));
  CUDA_OK(cudaGraphDestroy(gr));
  CUDA_OK(cudaStreamDestroy(s));
  char name[160];
  std::snprintf(name, sizeof name, "sampling graph bins=%d T=%.2f top_k=%d top_p=%.2f (one capture, %d replays, share differing)", bins, p.temperature, p.top_k,
                p.top_p, positions);
  report(name, double(differ) / total, 0.0);
}

// Prefill attention of a whole window (and a chunk of it) vs the engine's attention_ref,
// with q|k|v in one buffer as the GEMM writes them.
void prefill_case(int func, int len, int bc, int prime, int enc, int n, int heads, int dh, int q_begin, int q_end) {
  jb::gpu::AttnGeom g;
  g.func = func;
  g.len = len;
  g.block_ctx = bc;
  g.prime_len = prime;
  g.enc_len = enc;
  const int st = heads * dh, keys = jb::gpu::attn_key_positions(g);
  const std::vector<float> qkv = randn(size_t(n) * len * 3 * st), ekv = randn(size_t(n) * std::max(1, enc) * 2 * st);
  std::vector<float> want(size_t(n) * len * st);
  jb::AttnShape s;
  s.func = func;
  s.len = len;
  s.block_ctx = bc;
  s.heads = heads;
  s.head_dim = dh;
  s.prime_len = prime;
  s.enc_len = enc;
  const bool e = func == 6;
  for (int b = 0; b < n; ++b) {
    const float* base = qkv.data() + size_t(b) * len * 3 * st;
    const float* kvb = e ? ekv.data() + size_t(b) * enc * 2 * st : base + st;
    jb::attention_ref(s, base, 3 * st, kvb, e ? 2 * st : 3 * st, kvb + st, e ? 2 * st : 3 * st, want.data() + size_t(b) * len * st, st);
  }
  Dev<float> dqkv(qkv), dekv(ekv), dout(size_t(n) * len * st);
  CUDA_OK(cudaMemset(dout.p, 0, dout.n * 4));
  jb::cuda::PrefillIO io;
  io.q = dqkv.p;
  io.k = e ? dekv.p : dqkv.p + st;
  io.v = e ? dekv.p + st : dqkv.p + 2 * st;
  io.out = dout.p;
  io.ldq = 3 * st;
  io.ldk = io.ldv = e ? 2 * st : 3 * st;
  io.ldo = st;
  io.q_sample = size_t(len) * 3 * st;
  io.kv_sample = e ? size_t(enc) * 2 * st : size_t(len) * 3 * st;
  io.out_sample = size_t(len) * st;
  (void)keys;
  CUDA_OK(jb::cuda::attn_prefill(g, q_begin, q_end, n, heads, dh, io, 0));
  CUDA_OK(cudaDeviceSynchronize());
  const std::vector<float> got = dout.get();
  double worst = 0;
  for (int b = 0; b < n; ++b)
    for (int i = 0; i < len; ++i)
      for (int c = 0; c < st; ++c) {
        const size_t at = (size_t(b) * len + i) * st + c;
        const double w = (i >= q_begin && i < q_end) ? want[at] : 0.0;  // rows outside the chunk stay untouched
        worst = std::max(worst, std::fabs(double(got[at]) - w));
      }
  char name[160];
  std::snprintf(name, sizeof name, "attn_prefill type %d len=%d bc=%d n=%d heads=%d dh=%d rows [%d, %d)", func, len, bc, n, heads, dh, q_begin, q_end);
  report(name, worst, 3e-5);
}

// A decoder convolution vs its reference (gpu_ref::conv1d, itself checked equal to the
// engine's conv1d_ref / conv_transpose1d_ref bit for bit here), plain, with the input ReLU
// and as a residual accumulate, through the tiled implicit GEMM and the direct kernel (the
// Auto choice is one of the two). Tolerance relative to sum |w x| + |b| (+ |y0|): fp32
// accumulation vs the reference's double.
void conv_case(jb::cuda::ConvShape c, int n, int tin, bool relu, bool accumulate) {
  jb::ConvParams p;
  p.cin = c.cin;
  p.cout = c.cout;
  p.kernel = c.kernel;
  p.stride = c.stride;
  p.pad = c.pad;
  p.dilation = c.dilation;
  p.transposed = c.transposed;
  const int tout = p.out_len(tin);
  if (jb::cuda::conv_out_len(c, tin) != tout) {
    report("conv_out_len equals ConvParams::out_len", 1.0, 0.0);
    return;
  }
  const std::vector<float> x = randn(size_t(n) * c.cin * tin), w = randn(size_t(c.cin) * c.cout * c.kernel, 0.3f), bias = randn(c.cout);
  const std::vector<float> y0 = randn(size_t(n) * c.cout * tout);
  const float scale = 0.3f;
  std::vector<float> want = y0;
  jb::gpu_ref::conv1d(c.cin, c.cout, c.kernel, c.stride, c.pad, c.dilation, c.transposed, x.data(), n, tin, w.data(), bias.data(), want.data(),
                      relu, accumulate, scale);
  char name[200];
  std::snprintf(name, sizeof name, "conv%s cin=%d cout=%d k=%d s=%d p=%d d=%d n=%d tin=%d%s%s", c.transposed ? "_transpose1d" : "1d", c.cin, c.cout, c.kernel,
                c.stride, c.pad, c.dilation, n, tin, relu ? " relu" : "", accumulate ? " accumulate" : "");
  {  // the reference is the engine's op
    std::vector<float> xr = x, eng(want.size());
    if (relu) for (auto& v : xr) v = std::max(v, 0.0f);
    (c.transposed ? jb::conv_transpose1d_ref : jb::conv1d_ref)(p, xr.data(), n, tin, w.data(), bias.data(), eng.data());
    if (accumulate) for (size_t i = 0; i < eng.size(); ++i) eng[i] = y0[i] + scale * eng[i];
    size_t bad = 0;
    for (size_t i = 0; i < eng.size(); ++i) bad += std::memcmp(&eng[i], &want[i], sizeof(float)) != 0;
    report(std::string(name) + " ref == engine (bit-exact)", double(bad), 0.0);
  }
  // the size of the terms, for a tolerance relative to them
  std::vector<float> ax(x), aw(w), ab(bias), mag(want.size());
  for (auto* v : {&ax, &aw, &ab}) for (auto& e : *v) e = std::fabs(e);
  jb::gpu_ref::conv1d(c.cin, c.cout, c.kernel, c.stride, c.pad, c.dilation, c.transposed, ax.data(), n, tin, aw.data(), ab.data(), mag.data(),
                      false, false, 1.0f);
  jb::cuda::ConvPlan plan;
  const bool tiled_ok = jb::cuda::conv_plan(c, &plan);
  for (jb::cuda::ConvAlgo algo : {jb::cuda::ConvAlgo::Tiled, jb::cuda::ConvAlgo::Direct}) {
    if (algo == jb::cuda::ConvAlgo::Tiled && !tiled_ok) continue;
    Dev<float> dx(x), dw(w), db(bias), dy(y0);
    CUDA_OK(jb::cuda::conv1d(c, dx.p, n, tin, dw.p, db.p, dy.p, relu, accumulate, scale, 0, algo));
    CUDA_OK(cudaDeviceSynchronize());
    const std::vector<float> got = dy.get();
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i)
      worst = std::max(worst, std::fabs(double(got[i]) - want[i]) / (1e-6 + (accumulate ? scale * mag[i] + std::fabs(y0[i]) : mag[i])));
    report(std::string(name) + (algo == jb::cuda::ConvAlgo::Tiled ? " tiled" : " direct"), worst, 1e-6 * std::sqrt(double(c.cin * c.kernel)) + 1e-7);
  }
}

void dequantize_case(int n, int t, int bins, int width) {
  std::vector<int32_t> codes(size_t(n) * t);
  for (auto& c : codes) c = int32_t(rng() % bins);
  const std::vector<float> cb = randn(size_t(bins) * width);
  Dev<int32_t> dc(codes);
  Dev<float> dcb(cb), dout(size_t(n) * width * t);
  CUDA_OK(jb::cuda::dequantize(dc.p, n, t, dcb.p, bins, width, dout.p, 0));
  CUDA_OK(cudaDeviceSynchronize());
  const std::vector<float> got = dout.get();
  int bad = 0;
  for (int b = 0; b < n; ++b)
    for (int c = 0; c < width; ++c)
      for (int i = 0; i < t; ++i) bad += got[(size_t(b) * width + c) * t + i] != cb[size_t(codes[size_t(b) * t + i]) * width + c];
  char name[128];
  std::snprintf(name, sizeof name, "dequantize n=%d t=%d bins=%d width=%d (bit-exact)", n, t, bins, width);
  std::vector<float> ref(got.size());
  jb::gpu_ref::dequantize(codes.data(), n, t, cb.data(), width, ref.data());
  bad += int(std::memcmp(ref.data(), got.data(), got.size() * sizeof(float)) != 0);  // and its reference
  report(name, bad, 0.0);
}

// ---- the model path's kernels -------------------------------------------------------------

// Weights of dtype 0/1/2 as the device stores them (fp32 words or 16-bit patterns).
struct WeightsAny {
  int dtype = 0;
  std::vector<float> f;
  std::vector<uint16_t> h;
  void init(int dt, size_t count, float scale) {
    dtype = dt;
    f.clear();
    h.clear();
    for (size_t i = 0; i < count; ++i) {
      const float v = rng.symmetric() * scale;
      if (dt == 0) f.push_back(v);
      else if (dt == 1) h.push_back(jb::gpu::float_to_half_rne(v));
      else h.push_back(uint16_t(jb::gpu::f32_bits(v) >> 16));  // bf16 by truncation: any pattern will do
    }
  }
  const void* host() const { return dtype == 0 ? static_cast<const void*>(f.data()) : h.data(); }
  size_t bytes() const { return dtype == 0 ? f.size() * 4 : h.size() * 2; }
  // |W| with the same layout (for the error bound)
  WeightsAny abs() const {
    WeightsAny a = *this;
    for (auto& v : a.f) v = std::fabs(v);
    for (auto& v : a.h) v = uint16_t(v & 0x7fffu);
    return a;
  }
};
const char* dtype_name(int dt) { return dt == 0 ? "fp32" : dt == 1 ? "fp16" : "bf16"; }

// The error of an fp32 product vs the double reference, relative to sum |x w| (as gemv_case).
double product_err(const std::vector<float>& got, const std::vector<float>& want, const std::vector<float>& mag) {
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(double(got[i]) - want[i]) / std::max(1e-30, double(mag[i])));
  return worst;
}

// gemm (and, for M <= 16, gemv) over weights of `dtype` vs gemm_any; and a row of the GEMM
// computed alone equals the same row of the whole product bit for bit (chunked prefill).
void gemm_case(int M, int K, int N, int dtype, bool transposed, bool gelu, bool use_gemv = false, int blocks_wanted = 32) {
  const std::vector<float> x = randn(size_t(M) * K), bias = randn(N);
  WeightsAny w;
  w.init(dtype, size_t(K) * N, 1.0f / std::sqrt(float(K)));
  std::vector<float> want(size_t(M) * N), mag(size_t(M) * N);
  jb::gpu_ref::gemm_any(x.data(), M, K, N, K, w.host(), dtype, transposed, bias.data(), want.data(), N, gelu);
  std::vector<float> ax(x);
  for (auto& v : ax) v = std::fabs(v);
  const WeightsAny aw = w.abs();
  jb::gpu_ref::gemm_any(ax.data(), M, K, N, K, aw.host(), dtype, transposed, nullptr, mag.data(), N, false);
  for (auto& v : mag) v = std::max(v, 1e-3f);  // the gelu's value near 0 is its slope times the input
  Dev<float> dx(x), db(bias), dy(size_t(M) * N);
  Dev<unsigned char> dw(w.bytes());
  CUDA_OK(cudaMemcpy(dw.p, w.host(), w.bytes(), cudaMemcpyHostToDevice));
  Dev<float> work(std::max<size_t>(1, jb::cuda::gemv_workspace_floats(std::max(1, M), K, N, blocks_wanted)));
  if (use_gemv)
    CUDA_OK(jb::cuda::gemv(dx.p, M, K, N, dw.p, dtype, transposed, db.p, dy.p, work.p, blocks_wanted, gelu, 0));
  else
    CUDA_OK(jb::cuda::gemm(dx.p, M, K, N, K, dw.p, dtype, transposed, db.p, dy.p, N, gelu, 0));
  CUDA_OK(cudaDeviceSynchronize());
  const std::vector<float> got = dy.get();
  const double err = product_err(got, want, mag);
  char name[160];
  std::snprintf(name, sizeof name, "%s %s %s M=%d K=%d N=%d%s", use_gemv ? "gemv" : "gemm", dtype_name(dtype), transposed ? "(N,K)" : "(K,N)", M, K, N,
                gelu ? " +gelu" : "");
  report(name, err, 2.0 * K * 5.96e-8 + 1e-6);
  if (!use_gemv && M > 1) {
    const int r = M / 2;  // that row alone
    const std::vector<float> xr(x.begin() + size_t(r) * K, x.begin() + size_t(r + 1) * K);
    Dev<float> dx1(xr);
    Dev<float> dy1{size_t(N)};
    CUDA_OK(jb::cuda::gemm(dx1.p, 1, K, N, K, dw.p, dtype, transposed, db.p, dy1.p, N, gelu, 0));
    CUDA_OK(cudaDeviceSynchronize());
    const std::vector<float> one = dy1.get();
    std::snprintf(name, sizeof name, "gemm %s M=%d row %d alone equals its row bit for bit", dtype_name(dtype), M, r);
    report(name, std::memcmp(one.data(), got.data() + size_t(r) * N, size_t(N) * 4) == 0 ? 0.0 : 1.0, 0.0);
  }
}

// gemm_wmma (fp16 inputs, tensor cores) vs its reference gemm_f16_inputs: the same rounded
// inputs, so what remains is the fp32 accumulation. Tolerance 2 K 2^-23 of sum_k |x^ w^|
// (+1e-6 for the fp32 bias add and the GELU): at most K additions into the accumulator, each
// off by less than one fp32 ulp (2^-23 relative: the tensor cores may truncate rather than
// round) of a partial sum bounded by sum |x^ w^|, and a factor 2 for the alignment of the
// products within one tensor-core step (measured behaviour of current GPUs: ~2 ulps at most).
// Plus: two runs give the same bits (no split-K, no atomics).
void gemm_wmma_case(int M, int K, int N, int dtype, bool transposed, bool gelu) {
  const std::vector<float> x = randn(size_t(M) * K), bias = randn(N);
  WeightsAny w;
  w.init(dtype, size_t(K) * N, 1.0f / std::sqrt(float(K)));
  std::vector<float> want(size_t(M) * N), mag(size_t(M) * N);
  jb::gpu_ref::gemm_f16_inputs(x.data(), M, K, N, K, w.host(), dtype, transposed, bias.data(), want.data(), N, gelu);
  std::vector<float> ax(x);
  for (auto& v : ax) v = std::fabs(v);
  const WeightsAny aw = w.abs();
  jb::gpu_ref::gemm_f16_inputs(ax.data(), M, K, N, K, aw.host(), dtype, transposed, nullptr, mag.data(), N, false);  // sum |x^ w^|
  for (auto& v : mag) v = std::max(v, 1e-3f);
  Dev<float> dx(x), db(bias), dy(size_t(M) * N), dy2(size_t(M) * N);
  Dev<unsigned char> dw(w.bytes());
  CUDA_OK(cudaMemcpy(dw.p, w.host(), w.bytes(), cudaMemcpyHostToDevice));
  CUDA_OK(jb::cuda::gemm_wmma(dx.p, M, K, N, K, dw.p, dtype, transposed, db.p, dy.p, N, gelu, 0));
  CUDA_OK(jb::cuda::gemm_wmma(dx.p, M, K, N, K, dw.p, dtype, transposed, db.p, dy2.p, N, gelu, 0));
  CUDA_OK(cudaDeviceSynchronize());
  const std::vector<float> got = dy.get(), again = dy2.get();
  char name[160];
  std::snprintf(name, sizeof name, "gemm_wmma %s %s M=%d K=%d N=%d%s", dtype_name(dtype), transposed ? "(N,K)" : "(K,N)", M, K, N, gelu ? " +gelu" : "");
  report(name, product_err(got, want, mag), 2.0 * K * 1.1920929e-7 + 1e-6);
  std::snprintf(name, sizeof name, "gemm_wmma %s M=%d K=%d N=%d deterministic (two runs)", dtype_name(dtype), M, K, N);
  report(name, std::memcmp(got.data(), again.data(), got.size() * 4) == 0 ? 0.0 : 1.0, 0.0);
}

// gemm_wmma vs the default fp32 gemm on the same inputs: the difference the opt-in costs.
// Bound, relative to sum_k |x w|: each product x^ w^ = x w (1 + d), |d| <= 2u + u^2 with
// u = 2^-11 (fp16's unit roundoff; u for fp16 weights, stored exactly), plus both kernels'
// accumulation (2 K 2^-24 and 2 K 2^-23 as above), plus 2e-6 (the bias add, the GELU, fp16
// subnormals' absolute error). The case name carries the observed rms(diff) / rms(y) (~1e-4..1e-3:
// what the logits see), and the difference must not be 0 (the inputs really are rounded).
void gemm_wmma_vs_fp32_case(int M, int K, int N, int dtype, bool transposed) {
  const std::vector<float> x = randn(size_t(M) * K), bias = randn(N);
  WeightsAny w;
  w.init(dtype, size_t(K) * N, 1.0f / std::sqrt(float(K)));
  std::vector<float> mag(size_t(M) * N);
  std::vector<float> ax(x);
  for (auto& v : ax) v = std::fabs(v);
  const WeightsAny aw = w.abs();
  jb::gpu_ref::gemm_any(ax.data(), M, K, N, K, aw.host(), dtype, transposed, nullptr, mag.data(), N, false);  // sum |x w|
  for (auto& v : mag) v = std::max(v, 1e-3f);
  Dev<float> dx(x), db(bias), dt(size_t(M) * N), df(size_t(M) * N);
  Dev<unsigned char> dw(w.bytes());
  CUDA_OK(cudaMemcpy(dw.p, w.host(), w.bytes(), cudaMemcpyHostToDevice));
  CUDA_OK(jb::cuda::gemm_wmma(dx.p, M, K, N, K, dw.p, dtype, transposed, db.p, dt.p, N, false, 0));
  CUDA_OK(jb::cuda::gemm(dx.p, M, K, N, K, dw.p, dtype, transposed, db.p, df.p, N, false, 0));
  CUDA_OK(cudaDeviceSynchronize());
  const std::vector<float> t = dt.get(), f = df.get();
  double d2 = 0, y2 = 0, dmax = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    const double d = double(t[i]) - f[i];
    d2 += d * d;
    y2 += double(f[i]) * f[i];
    dmax = std::max(dmax, std::fabs(d));
  }
  const double u = 1.0 / 2048.0, dprod = dtype == 1 ? u : 2.0 * u + u * u;
  char name[200];
  // (The rms difference is printed, not put in the case name: the inputs depend on the cases
  // run before, and the sanitizer runs split the groups differently.)
  std::printf("     gemm_wmma vs gemm %s %s M=%d K=%d N=%d: rms diff / rms y %.1e\n", dtype_name(dtype), transposed ? "(N,K)" : "(K,N)", M,
              K, N, std::sqrt(d2 / std::max(1e-30, y2)));
  std::snprintf(name, sizeof name, "gemm_wmma vs gemm %s %s M=%d K=%d N=%d", dtype_name(dtype), transposed ? "(N,K)" : "(K,N)", M, K, N);
  report(name, product_err(t, f, mag), dprod + 2.0 * K * 5.96e-8 + 2.0 * K * 1.1920929e-7 * (1.0 + dprod) + 2e-6);
  std::snprintf(name, sizeof name, "gemm_wmma vs gemm %s M=%d K=%d N=%d differs (inputs rounded)", dtype_name(dtype), M, K, N);
  report(name, dmax > 0 ? 0.0 : 1.0, 0.0);
}

void add_layer_norm_case(int rows, int width) {
  const std::vector<float> h = randn(size_t(rows) * width, 3.0f), a = randn(size_t(rows) * width), g = randn(width), b = randn(width);
  std::vector<float> want(size_t(rows) * width);
  jb::gpu_ref::add_layer_norm(h.data(), a.data(), rows, width, g.data(), b.data(), want.data());
  Dev<float> dh(h), da(a), dg(g), dbb(b), dy(want.size());
  CUDA_OK(jb::cuda::add_layer_norm(dh.p, da.p, rows, width, dg.p, dbb.p, dy.p, 0));
  CUDA_OK(cudaDeviceSynchronize());
  const std::vector<float> got = dy.get();
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(double(got[i]) - want[i]) / (1.0 + std::fabs(want[i])));
  char name[160];
  std::snprintf(name, sizeof name, "add_layer_norm rows=%d width=%d", rows, width);
  report(name, worst, 2e-5);
}

// A chunk [p0, p0 + c) attending over the cache (positions < p0 stored one by one, as decode
// steps store them) and its own rows: the device vs the reference (either cache type), the
// fp32 cache also vs the engine's attention_ref over the whole sequence; one head's
// probabilities; then the batched store of the chunk equal (bit for bit) to storing its
// positions one after another.
template <typename TD, typename TH>
void attn_chunk_case(int func, int len, int bc, int prime, int enc, int n, int heads, int dh, int p0, int c) {
  jb::gpu::AttnGeom g;
  g.func = func;
  g.len = len;
  g.block_ctx = bc;
  g.prime_len = prime;
  g.enc_len = enc;
  const int st = heads * dh, keys = jb::gpu::attn_key_positions(g);
  const bool e = func == 6;
  const std::vector<float> all = randn(size_t(n) * len * 3 * st), ekv = randn(size_t(n) * std::max(1, enc) * 2 * st);
  const size_t cache = jb::gpu::kv_elements(g, n, heads, dh);
  std::vector<TH> kc(std::max<size_t>(1, cache)), vc(kc.size());
  const int rows = jb::gpu::kv_rows(g);
  if (e) {
    for (int b = 0; b < n; ++b)
      for (int j = 0; j < enc; ++j)
        for (int h = 0; h < heads; ++h)
          for (int d = 0; d < dh; ++d) {
            const size_t at = jb::gpu::kv_index(rows, heads, dh, b, h, j, d);
            const size_t from = (size_t(b) * enc + j) * 2 * st + h * dh + d;
            jb::gpu_ref::cache_put(kc.data(), at, ekv[from]);
            jb::gpu_ref::cache_put(vc.data(), at, ekv[from + st]);
          }
  } else {
    std::vector<float> k(size_t(n) * st), v(size_t(n) * st);
    for (int pos = 0; pos < p0; ++pos) {
      for (int b = 0; b < n; ++b)
        for (int i = 0; i < st; ++i) {
          const size_t r = (size_t(b) * len + pos) * 3 * st;
          k[size_t(b) * st + i] = all[r + st + i];
          v[size_t(b) * st + i] = all[r + 2 * st + i];
        }
      jb::gpu_ref::kv_store_t(g, pos, n, heads, dh, k.data(), v.data(), st, kc.data(), vc.data());
    }
  }
  // the chunk's rows: (b, i) -> row b * c + i
  const int ld = e ? st : 3 * st;
  std::vector<float> chunk(size_t(n) * c * ld);
  for (int b = 0; b < n; ++b)
    for (int i = 0; i < c; ++i)
      for (int q = 0; q < ld; ++q) chunk[(size_t(b) * c + i) * ld + q] = all[(size_t(b) * len + p0 + i) * 3 * st + q];
  std::vector<float> want(size_t(n) * c * st), want_p(size_t(n) * len * keys, 0.0f);
  jb::gpu_ref::attn_chunk(g, p0, c, n, heads, dh, chunk.data(), ld, st, 2 * st, kc.data(), vc.data(), want.data(), st, want_p.data(), heads - 1, len);
  Dev<float> dchunk(chunk), dout(want.size()), dprobs(want_p.size());
  Dev<TH> dkc(kc), dvc(vc);
  CUDA_OK(cudaMemset(dprobs.p, 0, dprobs.n * 4));
  jb::cuda::ChunkAttn a;
  a.p0 = p0;
  a.c = c;
  a.n = n;
  a.heads = heads;
  a.dh = dh;
  a.qkv = dchunk.p;
  a.ld = ld;
  a.koff = st;
  a.voff = 2 * st;
  a.out = dout.p;
  a.ldo = st;
  a.probs = dprobs.p;
  a.probs_head = heads - 1;
  a.probs_len = len;
  CUDA_OK(jb::cuda::attn_chunk(g, a, reinterpret_cast<const TD*>(dkc.p), reinterpret_cast<const TD*>(dvc.p), 0));
  CUDA_OK(cudaDeviceSynchronize());
  const std::vector<float> got = dout.get(), got_p = dprobs.get();
  double worst = 0, worst_p = 0, worst_engine = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(double(got[i]) - want[i]));
  for (size_t i = 0; i < got_p.size(); ++i) worst_p = std::max(worst_p, std::fabs(double(got_p[i]) - want_p[i]));
  const bool f32 = sizeof(TH) == 4;
  char name[200];
  const char* tn = f32 ? "fp32" : "fp16";
  std::snprintf(name, sizeof name, "attn_chunk %s type %d len=%d bc=%d n=%d heads=%d dh=%d rows [%d, %d)", tn, func, len, bc, n, heads, dh, p0, p0 + c);
  report(name, worst, 3e-5);
  std::snprintf(name, sizeof name, "attn_chunk %s type %d probabilities of head %d", tn, func, heads - 1);
  report(name, worst_p, 3e-6);
  if (f32) {  // the engine's own full-sequence attention, rows [p0, p0 + c)
    jb::AttnShape s;
    s.func = func;
    s.len = len;
    s.block_ctx = bc;
    s.heads = heads;
    s.head_dim = dh;
    s.prime_len = prime;
    s.enc_len = enc;
    std::vector<float> full(size_t(len) * st);
    for (int b = 0; b < n; ++b) {
      const float* base = all.data() + size_t(b) * len * 3 * st;
      const float* kvb = e ? ekv.data() + size_t(b) * enc * 2 * st : base + st;
      jb::attention_ref(s, base, 3 * st, kvb, e ? 2 * st : 3 * st, kvb + st, e ? 2 * st : 3 * st, full.data(), st);
      for (int i = 0; i < c; ++i)
        for (int q = 0; q < st; ++q)
          worst_engine = std::max(worst_engine, std::fabs(double(got[(size_t(b) * c + i) * st + q]) - full[size_t(p0 + i) * st + q]));
    }
    std::snprintf(name, sizeof name, "attn_chunk fp32 type %d rows [%d, %d) vs the engine's attention_ref", func, p0, p0 + c);
    report(name, worst_engine, 3e-5);
  }
  if (!e) {
    jb::gpu_ref::kv_store_chunk(g, p0, c, n, heads, dh, chunk.data() + st, chunk.data() + 2 * st, ld, kc.data(), vc.data());
    CUDA_OK(jb::cuda::kv_store_chunk(g, p0, c, n, heads, dh, dchunk.p + st, dchunk.p + 2 * st, ld, reinterpret_cast<TD*>(dkc.p),
                                     reinterpret_cast<TD*>(dvc.p), 0));
    CUDA_OK(cudaDeviceSynchronize());
    const std::vector<TH> kd = dkc.get(), vd = dvc.get();
    std::snprintf(name, sizeof name, "kv_store_chunk %s type %d [%d, %d) equals stores one by one", tn, func, p0, p0 + c);
    report(name, (std::memcmp(kd.data(), kc.data(), kc.size() * sizeof(TH)) == 0 && std::memcmp(vd.data(), vc.data(), vc.size() * sizeof(TH)) == 0) ? 0.0 : 1.0,
           0.0);
  }
}

void embed_case(int n, int c, int p0, int w, int dtype, bool y_cond, int xc_len) {
  const int len = 40, bins = 23;
  WeightsAny xe, pe;
  xe.init(dtype, size_t(bins) * w, 1.0f);
  pe.init(dtype, size_t(len) * w, 1.0f);
  const std::vector<float> y = randn(size_t(n) * w), start = randn(w), xc = randn(size_t(n) * std::max(1, xc_len) * w);
  std::vector<int32_t> tokens(size_t(n) * len);
  for (auto& t : tokens) t = int32_t(rng() % bins);
  std::vector<float> want(size_t(n) * c * w);
  jb::gpu_ref::embed(xe.host(), dtype, pe.host(), dtype, y_cond ? y.data() : nullptr, start.data(), xc_len ? xc.data() : nullptr, xc_len, tokens.data(),
                     len, w, n, c, p0, want.data());
  Dev<unsigned char> dxe(xe.bytes()), dpe(pe.bytes());
  CUDA_OK(cudaMemcpy(dxe.p, xe.host(), xe.bytes(), cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dpe.p, pe.host(), pe.bytes(), cudaMemcpyHostToDevice));
  Dev<float> dy(y), dstart(start), dxc(xc), dh(want.size());
  Dev<int32_t> dtok(tokens), dpos(std::vector<int32_t>{p0});
  jb::cuda::EmbedArgs e;
  e.x_emb = dxe.p;
  e.x_emb_dtype = dtype;
  e.pos_emb = dpe.p;
  e.pos_emb_dtype = dtype;
  e.y_cond = y_cond ? dy.p : nullptr;
  e.start = dstart.p;
  e.x_cond = xc_len ? dxc.p : nullptr;
  e.xc_len = xc_len;
  e.tokens = dtok.p;
  e.len = len;
  e.w = w;
  // by value for a chunk; from device memory (the decode step's position) for c = 1
  CUDA_OK(jb::cuda::embed(e, n, c, p0, c == 1 ? dpos.p : nullptr, dh.p, 0));
  CUDA_OK(cudaDeviceSynchronize());
  const std::vector<float> got = dh.get();
  char name[160];
  std::snprintf(name, sizeof name, "embed %s n=%d rows [%d, %d) w=%d %s x_cond %d", dtype_name(dtype), n, p0, p0 + c, w, y_cond ? "y_cond" : "start", xc_len);
  report(name, std::memcmp(got.data(), want.data(), got.size() * 4) == 0 ? 0.0 : 1.0, 0.0);
}


struct Options {
  bool small = false;
  std::vector<std::string> only;
  bool on(const char* group) const { return only.empty() || std::find(only.begin(), only.end(), group) != only.end(); }
};

const char* const kGroups[] = {"gemv", "layer_norm", "gelu", "residual", "attn_decode", "attn_prefill", "conv", "dequantize", "sampling", "layer", "graph",
                               "gemm", "gemm_wmma", "attn_chunk", "embed"};

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // one line per case, as it finishes
  Options o;
#if defined(JB_CUDA_EMULATED)
  o.small = true;
#endif
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name) -> std::string {
      const std::string n = std::string("--") + name;
      if (a == n && i + 1 < argc) return argv[++i];
      if (a.compare(0, n.size() + 1, n + "=") == 0) return a.substr(n.size() + 1);
      return "";
    };
    if (a == "--list") {
      for (const char* g : kGroups) std::printf("%s\n", g);
      return 0;
    }
    if (a.compare(0, 6, "--size") == 0) {
      const std::string v = value("size");
      if (v != "small" && v != "full") {
        std::fprintf(stderr, "--size small|full\n");
        return 2;
      }
      o.small = v == "small";
    } else if (a.compare(0, 6, "--only") == 0) {
      std::string v = value("only");
      for (size_t p = 0; p <= v.size();) {
        const size_t c = std::min(v.find(',', p), v.size());
        if (c > p) o.only.push_back(v.substr(p, c - p));
        p = c + 1;
      }
      for (const std::string& g : o.only)
        if (std::find_if(std::begin(kGroups), std::end(kGroups), [&](const char* k) { return g == k; }) == std::end(kGroups)) {
          std::fprintf(stderr, "unknown group %s (--list)\n", g.c_str());
          return 2;
        }
    } else {
      std::fprintf(stderr, "usage: %s [--size full|small] [--only group,...] [--list]\n", argv[0]);
      return 2;
    }
  }
  int dev = 0, sms = 0;
  CUDA_OK(cudaGetDevice(&dev));
  CUDA_OK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  cudaDeviceProp prop;
  CUDA_OK(cudaGetDeviceProperties(&prop, dev));
  std::printf("device %d: %s (sm_%d%d, %d SMs); %s shapes\n", dev, prop.name, prop.major, prop.minor, sms, o.small ? "small" : "full");
  const int want = 2 * sms;
  const bool S = o.small;
  // GEMV shapes: each official product (m_mlp = 1: c_fc and mlp c_proj are width x width):
  // 5b  c_attn 4800x3600, attn c_proj 1200x4800, c_fc / c_proj 4800x4800;
  // upsampler 1920x1440, 480x1920, 1920x1920; 1b_lyrics 2048x1536, 512x2048, 2048x2048;
  // the logits (x_out, stored (vocab, width): the transposed layout) over 2048 / 2127 tokens.
  if (o.on("gemv")) {
    const std::vector<std::pair<int, int>> model = S ? std::vector<std::pair<int, int>>{{480, 360}, {120, 480}, {480, 480}, {192, 144}}
                                                     : std::vector<std::pair<int, int>>{{4800, 3600}, {1200, 4800}, {4800, 4800}, {1920, 1440},
                                                                                        {480, 1920}, {1920, 1920}, {2048, 1536}, {512, 2048}};
    for (int M : {1, 4, 16})
      for (auto [K, N] : model) gemv_case(M, K, N, false, want);
    struct Shape {
      int m, k, n;
    };
    for (const Shape s : {Shape{1, 1, 1}, Shape{3, 7, 5}, Shape{2, 129, 257}, Shape{5, 1023, 33}, Shape{16, 64, 1}, Shape{1, 3000, 999}})
      for (bool t : {false, true}) gemv_case(s.m, s.k, s.n, t, want);
    gemv_case(1, S ? 480 : 4800, 2048, true, want);  // logits over the 2048 codes
    gemv_case(4, S ? 192 : 1920, 2048, true, want);
    gemv_case(2, S ? 256 : 2048, 2127, true, want);  // 1b_lyrics: 79 lyric tokens + 2048 codes
  }
  if (o.on("layer_norm"))
    for (auto [rows, width] : std::vector<std::pair<int, int>>{{1, S ? 480 : 4800}, {16, S ? 192 : 1920}, {3, 7}, {1, 1}, {2, 1025}}) {
      layer_norm_case(rows, width, false);
      layer_norm_case(rows, width, true);
    }
  if (o.on("gelu"))
    for (auto [rows, width] : std::vector<std::pair<int, int>>{{1, S ? 480 : 4800}, {16, S ? 192 : 1920}, {3, 5}}) {
      gelu_case(rows, width, true);
      gelu_case(rows, width, false);
    }
  if (o.on("residual")) {
    residual_case(4800, 1.0f);
    residual_case(1921, 0.5f);
  }
  // decode attention: the 5b top prior (n_ctx 8192, 128 blocks of 64; state 1200 = 8 heads x
  // 150), the upsamplers (n_ctx 8192, 128 blocks of 64; state 480, 1 head), odd shapes, and
  // batch 1 and 4 (flash-decoding splits differ with the batch). Small: the same heads over
  // a window of 1024 (16 blocks of 64).
  if (o.on("attn_decode")) {
    const int len = S ? 1024 : 8192;
    for (int func : {0, 1, 2, 3, 7}) {
      attn_case(func, len, 64, S ? 136 : 1088, 0, 1, 8, 150, want);
      attn_case(func, len, 64, S ? 136 : 1088, 0, 4, 1, 480, want);
      attn_case(func, 300, 20, 45, 0, 3, 3, 7, want);
    }
    attn_case(6, 64, 8, 0, 512, 1, 8, 150, want);
    attn_case(6, 32, 8, 0, 384, 4, 4, 128, want);
    attn_case(6, 16, 4, 0, 7, 2, 3, 33, want);
  }
  // prefill: every type over a whole window, a chunk of one, and 5b-/upsampler-like heads
  if (o.on("attn_prefill")) {
    for (int func : {0, 1, 2, 3, 6, 7}) {
      prefill_case(func, 256, 16, 40, 48, 2, 3, 33, 0, 256);
      prefill_case(func, 256, 16, 40, 48, 1, 2, 64, 70, 201);
    }
    prefill_case(2, S ? 512 : 2048, 64, 0, 0, 1, 8, 150, 0, S ? 512 : 2048);
    prefill_case(1, S ? 256 : 1024, 64, 0, 0, 1, 1, 480, 0, S ? 256 : 1024);
  }
  // VQ-VAE decoder convolutions: the dilated residual convs (k 3, dilation 1..27), the 1x1
  // convs, the upsampling transposed convs (k 4, stride 2, pad 1), odd lengths
  if (o.on("conv")) {
    using jb::cuda::ConvShape;
    for (int d : {1, 3, 9, 27}) conv_case({32, 32, 3, 1, d, d, false}, 2, 333, true, false);  // narrow tile (cout <= 32)
    for (int d : {1, 27}) conv_case({64, 64, 3, 1, d, d, false}, 1, 300, true, false);         // wide tile
    conv_case({32, 32, 1, 1, 0, 1, false}, 2, 333, true, true);                                // the residual 1x1, accumulate
    conv_case({64, 64, 1, 1, 0, 1, false}, 3, 129, true, true);
    conv_case({64, 64, 3, 1, 1, 1, false}, 1, S ? 300 : 1000, false, false);
    conv_case({64, 64, 4, 2, 1, 1, true}, 2, 257, false, false);                                // the upsampling k4 s2
    conv_case({32, 64, 4, 2, 1, 1, true}, 1, 300, false, false);
    conv_case({32, 32, 4, 2, 1, 1, true}, 3, 97, false, false);
    conv_case({32, 1, 3, 1, 1, 1, false}, 2, 2048, false, false);                               // the output conv (direct)
    conv_case({64, 1, 3, 1, 1, 1, false}, 1, 777, false, false);
    conv_case({7, 5, 5, 3, 2, 2, true}, 3, 19, true, true);
    // odd shapes: channel counts off the tiles, several row tiles, few columns, a lone
    // column, all-padding inputs, a strided plain conv, kernel 1 transposed
    conv_case({37, 45, 3, 1, 9, 9, false}, 2, 201, true, false);
    conv_case({5, 70, 3, 1, 3, 3, false}, 1, 130, false, true);
    conv_case({33, 131, 1, 1, 0, 1, false}, 1, 75, true, true);
    conv_case({19, 17, 3, 1, 27, 27, false}, 2, 40, true, false);  // dilation 27 over 40 steps: mostly padding
    conv_case({16, 24, 3, 1, 1, 1, false}, 3, 1, false, false);
    conv_case({33, 40, 4, 2, 1, 1, false}, 2, 101, false, false);
    conv_case({45, 37, 4, 2, 1, 1, true}, 2, 63, true, true);
    conv_case({40, 48, 1, 1, 0, 1, true}, 1, 50, false, false);
    conv_case({24, 36, 4, 3, 0, 1, true}, 2, 33, false, false);     // stride 3: phases of 2, 1, 1 taps
    conv_case({20, 40, 2, 4, 0, 1, true}, 1, 21, false, true);      // stride > kernel: phases without taps (bias only)
  }
  if (o.on("dequantize")) {
    dequantize_case(2, S ? 300 : 1000, 2048, 64);
    dequantize_case(1, 37, 512, 8);
  }
  // sampling: the top level's 2048 codes, 1b_lyrics' 2127 tokens, the default model's 512,
  // an odd size; plain temperature (the default), top-k, top-p
  if (o.on("sampling")) {
    const int positions = S ? 40 : 200;
    for (int bins : {2048, 2127, 512, 37}) {
      sampling_case(S ? 4 : 16, bins, jb::cuda::Sampling{1.0f, 0, 0.0f}, 3.0f, positions);
      sampling_case(4, bins, jb::cuda::Sampling{0.99f, 0, 0.0f}, 3.0f, positions);
      sampling_case(S ? 2 : 4, bins, jb::cuda::Sampling{0.7f, 40, 0.0f}, 3.0f, positions);
      sampling_case(S ? 2 : 4, bins, jb::cuda::Sampling{0.9f, 0, 0.9f}, 3.0f, positions);
      sampling_case(2, bins, jb::cuda::Sampling{1.0f, 1, 0.0f}, 3.0f, S ? 10 : positions);
    }
    sampling_case(S ? 2 : 4, 2048, jb::cuda::Sampling{1.0f, 0, 0.5f}, 0.01f, positions);  // near-uniform logits: long nucleus
  }
  // whole layers: small ones over a full window, then the 5b and upsampler layers (m_mlp 1)
  // over their first positions
  if (o.on("layer")) {
    for (int func : {0, 1, 2, 3, 6, 7}) layer_case(func, 96, 48, 96, 3, 64, 8, 20, 10, 2, 64, want);
    if (!S) {
      for (int func : {1, 2, 3}) layer_case(func, 4800, 1200, 4800, 8, 8192, 128, 0, 0, 1, 70, want);
      for (int func : {1, 2, 3}) layer_case(func, 1920, 480, 1920, 1, 8192, 128, 0, 0, 4, 70, want);
    } else {  // the full widths once each (every type is covered by the small layers above)
      layer_case(2, 4800, 1200, 4800, 8, 8192, 128, 0, 0, 1, 2, want);
      layer_case(1, 1920, 480, 1920, 1, 8192, 128, 0, 0, 4, 3, want);
    }
  }
  // graphs: one capture of a step replayed over the positions of a window (every type; a
  // long-run type past the first block so flash-decoding splits change with the position)
  if (o.on("graph")) {
    for (int func : {0, 1, 2, 3, 6, 7}) layer_case(func, 96, 48, 96, 3, 64, 8, 20, 10, 2, S ? 24 : 64, want, true);
    layer_case(0, 64, 32, 64, 1, 512, 8, 0, 0, 1, S ? 200 : 512, want, true);
    sampling_graph_case(2, 2127, jb::cuda::Sampling{1.0f, 0, 0.0f}, S ? 12 : 50);
    sampling_graph_case(2, 2048, jb::cuda::Sampling{0.9f, 0, 0.9f}, S ? 6 : 50);
  }
  // the model path: the prefill GEMM (every dtype, both layouts, odd shapes, the fused GELU),
  // the decode GEMV's fp32 / bf16 weights, the fused add + LayerNorm, the chunk attention
  // against the cache (fp32 and fp16, chunks spanning blocks) and its batched store, the
  // embeddings
  if (o.on("gemm")) {
    for (int dt : {0, 1, 2}) {
      gemm_case(S ? 130 : 1030, S ? 96 : 1920, S ? 200 : 1440, dt, false, false);
      gemm_case(65, 33, 70, dt, true, false);
      gemm_case(7, 300, 129, dt, false, true);
      gemm_case(3, 7, 5, dt, true, true, true, want);   // gemv
      gemm_case(16, 257, 131, dt, false, true, true, want);
      gemm_case(5, 96, 512, dt, true, false, true, want);  // logits (x_out)
    }
    gemm_case(1, 1, 1, 0, false, false);
    gemm_case(200, 64, 2048, 1, true, false);  // prefill logits over 2048 codes
  }
  // the opt-in tensor-core GEMM (JUKEBOX_CUDA_PREFILL=tensor): every dtype, both layouts,
  // shapes off the 16-multiples and off the tiles, the GELU; then its distance to the fp32 GEMM
  if (o.on("gemm_wmma")) {
    for (int dt : {0, 1, 2}) {
      gemm_wmma_case(S ? 130 : 1030, S ? 96 : 1920, S ? 200 : 1440, dt, false, false);
      gemm_wmma_case(S ? 97 : 1030, S ? 80 : 1920, S ? 72 : 1440, dt, true, false);
      gemm_wmma_case(65, 33, 70, dt, true, false);
      gemm_wmma_case(7, 300, 129, dt, false, true);
      gemm_wmma_case(17, 50, 19, dt, true, true);
      gemm_wmma_case(3, 7, 5, dt, false, false);
    }
    gemm_wmma_case(1, 1, 1, 0, false, false);
    gemm_wmma_case(200, 64, 2048, 1, true, false);  // prefill logits over 2048 codes
    for (int dt : {0, 1, 2})
      for (bool t : {false, true}) gemm_wmma_vs_fp32_case(S ? 70 : 1030, S ? 256 : 1920, S ? 130 : 1440, dt, t);
  }
  if (o.on("layer_norm"))
    for (auto [rows, width] : std::vector<std::pair<int, int>>{{1, S ? 480 : 4800}, {3, 7}, {70, 257}}) add_layer_norm_case(rows, width);
  if (o.on("attn_chunk")) {
    for (int func : {0, 1, 2, 3, 6, 7}) {
      attn_chunk_case<float, float>(func, 96, 8, 20, 13, 2, 3, 11, 0, 96);   // one pass
      attn_chunk_case<float, float>(func, 96, 8, 20, 13, 2, 3, 11, 21, 19);  // a chunk spanning blocks
      attn_chunk_case<__half, uint16_t>(func, 96, 8, 20, 13, 1, 2, 33, 37, 30);
    }
    attn_chunk_case<float, float>(1, S ? 256 : 1024, 64, 0, 0, 1, 2, 64, 100, 130);
  }
  if (o.on("embed")) {
    embed_case(2, 17, 0, 37, 0, true, 40);
    embed_case(3, 5, 9, 64, 1, false, 1);
    embed_case(2, 1, 0, 33, 2, false, 0);  // position 0 from device memory: the start token
    embed_case(1, 1, 12, 65, 1, true, 40);
  }
  std::printf("%s: %d cases, %d outside tolerance\n", g_failed ? "FAILED" : "parity ok", g_cases, g_failed);
  return g_failed ? 1 : 0;
}
