// `npm run bench:cuda` (build/cuda/jukebox-cuda-bench): the decode step of full-size prior
// stacks with random fp16 weights, timed on the device, as ratios that hold across runs:
//  - the device's copy bandwidth, measured here (device-to-device cudaMemcpy, read + write);
//  - per stack and batch (1, 4, 16): ms per decode step of every layer at mid-window, tokens
//    per second, and the bytes each step must read (weights + the KV rows attention reads)
//    divided by the step time, next to the copy bandwidth (target >= 60%);
//  - the same step replayed from a CUDA graph captured once (position in device memory);
//  - the projected seconds of decode compute per second of 5b_lyrics audio at batch 1 (top
//    level 344.5 tokens/s of audio on the 5b_lyrics stack, levels 1 and 0 1378 + 5512.5
//    tokens/s on the upsampler stack; prefill is not counted), and the floor the bytes alone
//    set at the measured bandwidth;
//  - the VQ-VAE level-0 decoder's real-time factor (official shape, direct convolutions).
// Stacks, as the official checkpoints are (../shared/keys; m_mlp = 1, so the MLP is width x
// width; n_ctx 8192 in 128 blocks of 64):
//   "5b_lyrics" width 4800, state 1200, 8 heads, 79 layers: 72 cycling row / column /
//               previous-row (attn_order 2) and 7 lyric enc-dec layers (q only; 512 encoder
//               keys) after every 9 from layer 18 on; 10.76 GB of fp16 weights per token
//               (69.12 M weights a layer: c_attn 4800x3600 + c_proj 1200x4800 + c_fc and
//               mlp c_proj 4800x4800; 57.6 M in an enc-dec layer, whose c_attn is 4800x1200);
//   "upsampler" width 1920, state 480, 1 head, 72 layers; 1.59 GB per token (11.06 M a layer).
// An argument N runs only the first N layers of each stack (quick runs; figures per step are
// then for N layers).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <string>
#include <vector>

#include "../../common/kv_layout.h"
#include "../kernels/decode_layer.h"
#include "../kernels/kernels.h"
#include "../common/jb_launch.h"

namespace {

#define CUDA_OK(call)                                                                                           \
  do {                                                                                                          \
    cudaError_t e_ = (call);                                                                                    \
    if (e_ != cudaSuccess) {                                                                                    \
      std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorString(e_), __FILE__, __LINE__, #call); \
      std::exit(2);                                                                                             \
    }                                                                                                           \
  } while (0)

__global__ void fill_half(__half* p, size_t n, float scale, uint32_t seed) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint32_t x = uint32_t(i) * 2654435761u ^ seed;
    x ^= x >> 15;
    x *= 2246822519u;
    x ^= x >> 13;
    p[i] = __float2half((float(x & 0xffff) / 65535.0f - 0.5f) * scale);
  }
}

__global__ void fill_float(float* p, size_t n, float v) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) p[i] = v;
}

std::vector<void*> g_allocs;

template <typename T>
T* dalloc(size_t n) {
  void* p = nullptr;
  CUDA_OK(cudaMalloc(&p, std::max<size_t>(1, n) * sizeof(T)));
  g_allocs.push_back(p);
  return static_cast<T*>(p);
}

void free_all() {
  for (void* p : g_allocs) cudaFree(p);
  g_allocs.clear();
}

double copy_bandwidth() {
  const size_t bytes = size_t(1) << 30;
  char *a = nullptr, *b = nullptr;
  CUDA_OK(cudaMalloc(&a, bytes));
  CUDA_OK(cudaMalloc(&b, bytes));
  CUDA_OK(cudaMemset(a, 1, bytes));
  cudaEvent_t t0, t1;
  CUDA_OK(cudaEventCreate(&t0));
  CUDA_OK(cudaEventCreate(&t1));
  CUDA_OK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
  CUDA_OK(cudaEventRecord(t0));
  const int reps = 10;
  for (int i = 0; i < reps; ++i) CUDA_OK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
  CUDA_OK(cudaEventRecord(t1));
  CUDA_OK(cudaEventSynchronize(t1));
  float ms = 0;
  CUDA_OK(cudaEventElapsedTime(&ms, t0, t1));
  cudaFree(a);
  cudaFree(b);
  return 2.0 * bytes * reps / (ms * 1e-3);  // bytes read + written per second
}

struct Stack {
  const char* name;
  jb::cuda::DevDims d;
  std::vector<int> funcs;  // attention type of each layer
};

// 5b_lyrics' layer pattern (../shared/keys/summary.json prior_5b_lyrics_info.attn_funcs).
std::vector<int> funcs_5b_lyrics() {
  std::vector<int> f;
  for (int i = 0; i < 72; ++i) {
    f.push_back(1 + i % 3);
    if (i + 1 >= 18 && (i + 1 - 18) % 9 == 0) f.push_back(6);
  }
  return f;  // 79
}

std::vector<int> funcs_cycle(int depth) {
  std::vector<int> f;
  for (int i = 0; i < depth; ++i) f.push_back(1 + i % 3);
  return f;
}

struct Result {
  double ms, ms_graph, bytes;
};

Result bench_stack(const Stack& st, int n, int blocks_wanted, int max_layers) {
  const jb::cuda::DevDims& d = st.d;
  const int dh = d.state / d.heads;
  const int depth = max_layers > 0 ? std::min<int>(max_layers, int(st.funcs.size())) : int(st.funcs.size());
  std::vector<jb::cuda::DevLayer> layers(depth);
  double weight_bytes = 0, kv_bytes_read = 0;
  const int pos = d.len / 2 + d.len / d.blocks / 2;  // mid-window, mid-block
  for (int li = 0; li < depth; ++li) {
    jb::cuda::DevLayer& l = layers[li];
    l.attn_func = st.funcs[li];
    const bool enc = l.attn_func == 6;
    auto mat = [&](int in, int out) {
      __half* w = dalloc<__half>(size_t(in) * out);
      JB_LAUNCH(fill_half, 1024, 256, 0, 0)(w, size_t(in) * out, 2.0f / float(in), uint32_t(li * 7 + in + out));
      weight_bytes += 2.0 * in * out;
      return jb::cuda::DevLinear{w, [&] {
                                   float* b = dalloc<float>(out);
                                   JB_LAUNCH(fill_float, 64, 256, 0, 0)(b, out, 0.01f);
                                   return b;
                                 }()};
    };
    auto vec = [&](int k, float v) {
      float* p = dalloc<float>(k);
      JB_LAUNCH(fill_float, 64, 256, 0, 0)(p, k, v);
      return p;
    };
    l.ln0_w = vec(d.width, 1.0f);
    l.ln0_b = vec(d.width, 0.0f);
    l.ln1_w = vec(d.width, 1.0f);
    l.ln1_b = vec(d.width, 0.0f);
    l.c_attn = mat(d.width, enc ? d.state : 3 * d.state);  // enc-dec: q only (k, v of the encoder are cached once)
    l.c_proj = mat(d.state, d.width);
    l.mlp_fc = mat(d.width, d.mlp);
    l.mlp_proj = mat(d.mlp, d.width);
    jb::gpu::AttnGeom g;
    g.func = l.attn_func;
    g.len = d.len;
    g.block_ctx = d.len / d.blocks;
    g.enc_len = d.enc_len;
    const size_t cache = jb::gpu::kv_elements(g, n, d.heads, dh);
    l.kc = dalloc<__half>(cache);
    l.vc = dalloc<__half>(cache);
    JB_LAUNCH(fill_half, 1024, 256, 0, 0)(l.kc, cache, 1.0f, 11u);
    JB_LAUNCH(fill_half, 1024, 256, 0, 0)(l.vc, cache, 1.0f, 13u);
    kv_bytes_read += 2.0 * 2.0 * jb::gpu::kv_run(g, pos).count * double(n) * d.state;  // k and v, fp16
  }
  float* h = dalloc<float>(size_t(n) * d.width);
  JB_LAUNCH(fill_float, 64, 256, 0, 0)(h, size_t(n) * d.width, 0.5f);
  float* scratch = dalloc<float>(jb::cuda::decode_scratch_floats(d, n, blocks_wanted));
  int32_t* d_pos = dalloc<int32_t>(1);
  CUDA_OK(cudaMemcpy(d_pos, &pos, sizeof(int32_t), cudaMemcpyHostToDevice));  // every step decodes `pos`
  CUDA_OK(cudaDeviceSynchronize());
  cudaStream_t s;
  CUDA_OK(cudaStreamCreate(&s));
  auto step = [&] {
    for (const auto& l : layers) CUDA_OK(jb::cuda::decode_layer_step(l, d, d_pos, n, h, scratch, blocks_wanted, s));
  };
  cudaEvent_t t0, t1;
  CUDA_OK(cudaEventCreate(&t0));
  CUDA_OK(cudaEventCreate(&t1));
  step();  // warm-up
  CUDA_OK(cudaStreamSynchronize(s));
  const int reps = 20;
  CUDA_OK(cudaEventRecord(t0, s));
  for (int r = 0; r < reps; ++r) step();
  CUDA_OK(cudaEventRecord(t1, s));
  CUDA_OK(cudaEventSynchronize(t1));
  float ms = 0;
  CUDA_OK(cudaEventElapsedTime(&ms, t0, t1));
  // the same step captured once and replayed
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CUDA_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  step();
  CUDA_OK(cudaStreamEndCapture(s, &graph));
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  CUDA_OK(cudaGraphLaunch(exec, s));
  CUDA_OK(cudaStreamSynchronize(s));
  CUDA_OK(cudaEventRecord(t0, s));
  for (int r = 0; r < reps; ++r) CUDA_OK(cudaGraphLaunch(exec, s));
  CUDA_OK(cudaEventRecord(t1, s));
  CUDA_OK(cudaEventSynchronize(t1));
  float ms_graph = 0;
  CUDA_OK(cudaEventElapsedTime(&ms_graph, t0, t1));
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(s);
  free_all();
  return Result{ms / reps, ms_graph / reps, weight_bytes + kv_bytes_read};
}

// The official VQ-VAE's level-0 decoder shape (emb 64; width 32 x 2 and depth 4 x 2 at level
// 0; 3 upsampling blocks of 8 dilated residual convs (dilations 3^7 .. 1) and a k4/s2
// transposed conv; conv in and out, k3) over the codes of `seconds` of 44.1 kHz audio, with
// random weights: seconds of audio per second of compute (real-time factor).
double vq_decode_rtf(double seconds) {
  const int emb = 64, width = 64, depth = 8, bins = 2048, ups = 3;
  const int t0 = int(seconds * 44100 / 8);
  const size_t maxlen = size_t(t0) << ups;
  int32_t* codes = dalloc<int32_t>(t0);
  CUDA_OK(cudaMemset(codes, 0, sizeof(int32_t) * t0));
  float* cb = dalloc<float>(size_t(bins) * emb);
  float *a = dalloc<float>(maxlen * width), *b = dalloc<float>(maxlen * width), *h = dalloc<float>(maxlen * width);
  float* out = dalloc<float>(maxlen);
  JB_LAUNCH(fill_float, 64, 256, 0, 0)(cb, size_t(bins) * emb, 0.1f);
  auto weights = [&](size_t n) {
    float* w = dalloc<float>(n);
    JB_LAUNCH(fill_float, 64, 256, 0, 0)(w, n, 0.01f);
    return w;
  };
  float *w_in = weights(size_t(width) * emb * 3), *w_out = weights(size_t(width) * 3), *bias = weights(width);
  std::vector<float*> w_res, w_1x1, w_up;
  for (int i = 0; i < ups * depth; ++i) {
    w_res.push_back(weights(size_t(width) * width * 3));
    w_1x1.push_back(weights(size_t(width) * width));
  }
  for (int i = 0; i < ups; ++i) w_up.push_back(weights(size_t(width) * width * 4));
  CUDA_OK(cudaDeviceSynchronize());
  auto run = [&] {
    CUDA_OK(jb::cuda::dequantize(codes, 1, t0, cb, bins, emb, h, 0));
    CUDA_OK(jb::cuda::conv1d({emb, width, 3, 1, 1, 1, false}, h, 1, t0, w_in, bias, a, false, false, 1.0f, 0));
    int t = t0;
    for (int u = 0; u < ups; ++u) {
      for (int d = depth - 1; d >= 0; --d) {  // the decoder's reversed dilations
        int dil = 1;
        for (int k = 0; k < d; ++k) dil *= 3;
        CUDA_OK(jb::cuda::conv1d({width, width, 3, 1, dil, dil, false}, a, 1, t, w_res[u * depth + d], bias, h, true, false, 1.0f, 0));
        CUDA_OK(jb::cuda::conv1d({width, width, 1, 1, 0, 1, false}, h, 1, t, w_1x1[u * depth + d], bias, a, true, true, 1.0f, 0));
      }
      CUDA_OK(jb::cuda::conv1d({width, width, 4, 2, 1, 1, true}, a, 1, t, w_up[u], bias, b, false, false, 1.0f, 0));
      std::swap(a, b);
      t *= 2;
    }
    CUDA_OK(jb::cuda::conv1d({width, 1, 3, 1, 1, 1, false}, a, 1, t, w_out, bias, out, false, false, 1.0f, 0));
  };
  run();
  CUDA_OK(cudaDeviceSynchronize());
  cudaEvent_t e0, e1;
  CUDA_OK(cudaEventCreate(&e0));
  CUDA_OK(cudaEventCreate(&e1));
  CUDA_OK(cudaEventRecord(e0));
  run();
  CUDA_OK(cudaEventRecord(e1));
  CUDA_OK(cudaEventSynchronize(e1));
  float ms = 0;
  CUDA_OK(cudaEventElapsedTime(&ms, e0, e1));
  free_all();
  return seconds / (ms * 1e-3);
}

}  // namespace

int main(int argc, char** argv) {
#if defined(JB_CUDA_EMULATED)
  // The emulation build compiles this file so it keeps building; its figures would time the
  // CPU emulator, not a GPU.
  std::printf("jukebox-cuda-bench: this is the emulation build (cuda (emulated on the CPU)); run the benchmark on a GPU: npm run build:cuda && npm run bench:cuda\n");
  (void)argc;
  (void)argv;
  return 0;
#endif
  int dev = 0, sms = 0;
  CUDA_OK(cudaGetDevice(&dev));
  CUDA_OK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  cudaDeviceProp prop;
  CUDA_OK(cudaGetDeviceProperties(&prop, dev));
  const double bw = copy_bandwidth();
  std::printf("device: %s (sm_%d%d, %d SMs, %.0f GiB)\n", prop.name, prop.major, prop.minor, sms, prop.totalGlobalMem / 1073741824.0);
  std::printf("copy bandwidth (device to device, read + write): %.0f GB/s\n", bw / 1e9);
  const int max_layers = argc > 1 ? std::atoi(argv[1]) : 0;
  // DevDims: width, state, mlp (m_mlp = 1), heads, n_ctx, blocks, prime_len, enc_len, res_scale
  const Stack stacks[] = {
      {"5b_lyrics", {4800, 1200, 4800, 8, 8192, 128, 0, 512, 1.0f}, funcs_5b_lyrics()},
      {"upsampler", {1920, 480, 1920, 1, 8192, 128, 0, 0, 1.0f}, funcs_cycle(72)},
  };
  double tps1[2] = {0, 0}, bytes1[2] = {0, 0};
  for (int si = 0; si < 2; ++si)
    for (int n : {1, 4, 16}) {
      const Result r = bench_stack(stacks[si], n, 2 * sms, max_layers);
      const double best = std::min(r.ms, r.ms_graph);
      const double tps = n * 1000.0 / best;
      if (n == 1) {
        tps1[si] = tps;
        bytes1[si] = r.bytes;
      }
      const int layers = max_layers > 0 ? std::min<int>(max_layers, int(stacks[si].funcs.size())) : int(stacks[si].funcs.size());
      std::printf("%-9s %d layers batch %2d: %7.2f ms/step (graph %7.2f), %8.1f tokens/s, %6.2f GB/step read at %5.0f GB/s = %3.0f%% of copy bandwidth\n",
                  stacks[si].name, layers, n, r.ms, r.ms_graph, tps, r.bytes / 1e9, r.bytes / (best * 1e-3) / 1e9, 100.0 * r.bytes / (best * 1e-3) / bw);
    }
  const double rtf = vq_decode_rtf(10.0);
  std::printf("VQ-VAE level-0 decoder (official shape, random weights), 10 s of audio: %.0fx real time (direct fp32 convolutions; "
              "the implicit-GEMM tensor-core version is to come)\n", rtf);
  const double top = 44100.0 / 128, mid = 44100.0 / 32, bottom = 44100.0 / 8;
  const double secs = top / tps1[0] + (mid + bottom) / tps1[1] + 1.0 / rtf;
  const double floor = (top * bytes1[0] + (mid + bottom) * bytes1[1]) / bw;
  std::printf("projected compute per second of 5b_lyrics audio at batch 1: %.1f s (top %.1f s + upsamplers %.1f s + VQ-VAE decode %.2f s; "
              "the bytes alone at the measured bandwidth: %.1f s; target <= 8 s on an H100, original ~540 s on a V100; window re-prefill not counted)\n",
              secs, top / tps1[0], (mid + bottom) / tps1[1], 1.0 / rtf, floor);
  return 0;
}
