#include "kernels_binding.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "../cpu/attention.h"
#include "../cpu/conv1d.h"
#include "../cpu/matmul.h"
#include "../cpu/mem_bandwidth.h"
#include "../cpu/cpu_features.h"
#include "../cpu/fma_peak.h"
#include "../cpu/vq.h"
#include "js_error.h"
#include "weights.h"

namespace jb {

namespace {

const float* f32(const Napi::Value& v, size_t expect, const char* what) { return float32_arg(v, expect, what); }

bool use_ref(const Napi::Value& impl) { return impl.IsString() && impl.ToString().Utf8Value() == "ref"; }

// conv1d(x, n, tin, weight, bias|null, params, impl, epilogue?, y?) -> Float32Array
// params: {cin, cout, kernel, stride, pad, dilation, transposed}
// epilogue (fast path only): {reluInput, accumulate, scale}; with accumulate, y is the
// tensor accumulated into (copied, not modified).
Napi::Value Conv1dJs(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const ConvParams p = conv_params(info[5].As<Napi::Object>());
    const int n = info[1].As<Napi::Number>().Int32Value();
    const int tin = info[2].As<Napi::Number>().Int32Value();
    const int tout = p.out_len(tin);
    require(n > 0 && tin > 0 && tout > 0, "ERR_INVALID_ARGUMENT", "empty conv");
    const float* x = f32(info[0], size_t(n) * p.cin * tin, "x");
    const float* w = f32(info[3], size_t(p.cin) * p.cout * p.kernel, "weight");
    const float* b = info[4].IsNull() || info[4].IsUndefined() ? nullptr : f32(info[4], p.cout, "bias");
    Napi::Float32Array y = Napi::Float32Array::New(info.Env(), size_t(n) * p.cout * tout);
    if (use_ref(info[6])) {
      if (p.transposed) {
        conv_transpose1d_ref(p, x, n, tin, w, b, y.Data());
      } else {
        conv1d_ref(p, x, n, tin, w, b, y.Data());
      }
      return y;
    }
    ConvEpilogue ep;
    if (info[7].IsObject()) {
      Napi::Object eo = info[7].As<Napi::Object>();
      ep.relu_input = get_bool_or(eo, "reluInput", false);
      ep.accumulate = get_bool_or(eo, "accumulate", false);
      ep.scale = float(get_number_or(eo, "scale", 1.0));
    }
    if (ep.accumulate) {
      const float* y0 = f32(info[8], y.ElementLength(), "y");
      std::copy(y0, y0 + y.ElementLength(), y.Data());
    }
    Conv1d conv(p, w, b);
    conv.forward({x, n, p.cin, tin}, {y.Data(), n, p.cout, tout}, ep, ThreadPool::global());
    return y;
  });
}

// resblock(x, n, t, wa, ba, pa, wb, bb, scale, impl) -> x + scale * b(relu(a(relu(x))))
// 'ref' composes the scalar convs; 'fast' is the fused kernel.
Napi::Value ResblockJs(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const int n = info[1].As<Napi::Number>().Int32Value();
    const int t = info[2].As<Napi::Number>().Int32Value();
    const ConvParams pa = conv_params(info[5].As<Napi::Object>());
    ConvParams pb;
    pb.cin = pa.cout;
    pb.cout = pa.cin;
    pb.kernel = 1;
    const float scale = float(info[8].As<Napi::Number>().DoubleValue());
    const float* x = f32(info[0], size_t(n) * pa.cin * t, "x");
    const float* wa = f32(info[3], size_t(pa.cout) * pa.cin * pa.kernel, "wa");
    const float* ba = f32(info[4], pa.cout, "ba");
    const float* wb = f32(info[6], size_t(pb.cout) * pb.cin, "wb");
    const float* bb = f32(info[7], pb.cout, "bb");
    require(pa.out_len(t) == t && !pa.transposed && pa.stride == 1, "ERR_INVALID_ARGUMENT",
            "resblock: conv a must keep the length");
    Napi::Float32Array y = Napi::Float32Array::New(info.Env(), size_t(n) * pa.cin * t);
    if (use_ref(info[9])) {
      std::vector<float> xr(x, x + size_t(n) * pa.cin * t), h(size_t(n) * pa.cout * t), o(y.ElementLength());
      for (float& v : xr) v = std::max(v, 0.0f);
      conv1d_ref(pa, xr.data(), n, t, wa, ba, h.data());
      for (float& v : h) v = std::max(v, 0.0f);
      conv1d_ref(pb, h.data(), n, t, wb, bb, o.data());
      for (size_t i = 0; i < o.size(); ++i) y.Data()[i] = x[i] + scale * o[i];
      return y;
    }
    Conv1d a(pa, wa, ba), b(pb, wb, bb);
    resblock_forward(a, b, scale, {x, n, pa.cin, t}, {y.Data(), n, pa.cin, t}, ThreadPool::global());
    return y;
  });
}

// matmul(a (M x K), b (K x N), M, K, N, impl) -> Float32Array (M x N), row-major.
// The fast path is the conv engine with a 1-wide kernel: b's rows are the channels.
Napi::Value MatmulJs(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const int M = info[2].As<Napi::Number>().Int32Value();
    const int K = info[3].As<Napi::Number>().Int32Value();
    const int N = info[4].As<Napi::Number>().Int32Value();
    require(M > 0 && K > 0 && N > 0, "ERR_INVALID_ARGUMENT", "empty matmul");
    const float* a = f32(info[0], size_t(M) * K, "a");
    const float* b = f32(info[1], size_t(K) * N, "b");
    Napi::Float32Array c = Napi::Float32Array::New(info.Env(), size_t(M) * N);
    if (use_ref(info[5])) {
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
          double acc = 0;
          for (int k = 0; k < K; ++k) acc += double(a[size_t(i) * K + k]) * b[size_t(k) * N + j];
          c.Data()[size_t(i) * N + j] = float(acc);
        }
      return c;
    }
    ConvParams p;
    p.cin = K;
    p.cout = M;
    Conv1d conv(p, a, nullptr);
    conv.forward({b, 1, K, N}, {c.Data(), 1, M, N}, {}, ThreadPool::global());
    return c;
  });
}

// vqNearest(codebook (bins x width), bins, width, x (n x width), n, impl) -> Int32Array
Napi::Value VqNearestJs(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const int bins = info[1].As<Napi::Number>().Int32Value();
    const int width = info[2].As<Napi::Number>().Int32Value();
    const int n = info[4].As<Napi::Number>().Int32Value();
    require(bins > 0 && width > 0 && n >= 0, "ERR_INVALID_ARGUMENT", "bad codebook search shape");
    Codebook cb(f32(info[0], size_t(bins) * width, "codebook"), bins, width);
    const float* x = f32(info[3], size_t(n) * width, "x");
    Napi::Int32Array out = Napi::Int32Array::New(info.Env(), n);
    if (use_ref(info[5])) {
      vq_nearest_ref(cb, x, n, out.Data());
    } else {
      vq_nearest(cb, x, n, out.Data(), ThreadPool::global());
    }
    return out;
  });
}

// benchConv(params, n, tin, reps, fusedResblock?) -> {seconds, flops}: the conv (or, with
// fusedResblock, a residual block of this conv and a 1-wide conv back) timed natively on
// preallocated buffers, best of reps after a warm-up, so the figure is the kernel's alone.
Napi::Value BenchConvJs(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const ConvParams p = conv_params(info[0].As<Napi::Object>());
    const int n = info[1].As<Napi::Number>().Int32Value();
    const int tin = info[2].As<Napi::Number>().Int32Value();
    const int reps = std::max(1, info[3].As<Napi::Number>().Int32Value());
    const bool fused = info[4].IsBoolean() && info[4].As<Napi::Boolean>().Value();
    const int tout = p.out_len(tin);
    require(n > 0 && tin > 0 && tout > 0, "ERR_INVALID_ARGUMENT", "empty conv");
    std::vector<float> w(size_t(p.cin) * p.cout * p.kernel), b(p.cout);
    for (size_t i = 0; i < w.size(); ++i) w[i] = float((i * 2654435761u) % 1000) * 1e-4f - 0.05f;
    Buffer<float> x(size_t(n) * p.cin * tin, "bench input"), y(size_t(n) * std::max(p.cout, p.cin) * std::max(tout, tin), "bench output");
    for (size_t i = 0; i < x.size(); ++i) x[i] = float((i * 40503u) % 2001) * 1e-3f - 1.0f;
    y.zero();
    Conv1d conv(p, w.data(), b.data());
    ConvParams pb;
    pb.cin = p.cout;
    pb.cout = p.cin;
    std::vector<float> wb(size_t(pb.cin) * pb.cout, 0.01f), bb(pb.cout, 0.0f);
    Conv1d back(pb, wb.data(), bb.data());
    require(!fused || can_fuse_resblock(conv, back, tin), "ERR_INVALID_ARGUMENT", "not a residual-block conv");
    auto& pool = ThreadPool::global();
    auto once = [&] {
      if (fused) {
        resblock_forward(conv, back, 1.0f, {x.data(), n, p.cin, tin}, {y.data(), n, p.cin, tin}, pool);
      } else {
        conv.forward({x.data(), n, p.cin, tin}, {y.data(), n, p.cout, tout}, {}, pool);
      }
    };
    once();
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      once();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("seconds", best);
    o.Set("flops", conv.flops(n, tin) + (fused ? back.flops(n, tin) : 0.0));
    return o;
  });
}

// linear(x (M x K), M, K, w (Uint16Array fp16, Int8Array int8 or Float32Array), N, transposed,
//        bias|null, impl, scales?, dtype?)
//   dtype 'bf16': the Uint16Array holds bf16 values
//   -> y (M x N) = x . W + bias, W logical (K, N), stored (K, N) or (N, K) when transposed;
//   int8: W[k][n] = w * scales[n] (N fp32 scales, one per output channel, matmul.h)
Napi::Value LinearJs(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const int M = info[1].As<Napi::Number>().Int32Value();
    const int K = info[2].As<Napi::Number>().Int32Value();
    const int N = info[4].As<Napi::Number>().Int32Value();
    require(M > 0 && K > 0 && N > 0, "ERR_INVALID_ARGUMENT", "empty linear");
    const float* x = f32(info[0], size_t(M) * K, "x");
    WeightView w;
    w.k = K;
    w.n = N;
    w.transposed = info[5].ToBoolean().Value();
    Napi::TypedArray wa = info[3].As<Napi::TypedArray>();
    require(wa.ElementLength() == size_t(K) * N, "ERR_INVALID_ARGUMENT", "weight size");
    if (wa.TypedArrayType() == napi_uint16_array) {
      w.data = wa.As<Napi::Uint16Array>().Data();
      const bool bf16 = info.Length() > 9 && info[9].IsString() && info[9].As<Napi::String>().Utf8Value() == "bf16";
      w.dtype = bf16 ? DType::BF16 : DType::F16;
    } else if (wa.TypedArrayType() == napi_int8_array) {
      w.data = wa.As<Napi::Int8Array>().Data();
      w.dtype = DType::I8;
      w.scales = f32(info[8], size_t(N), "scales");
      w.scale_rows = w.transposed;  // output channels: stored rows of (N, K), columns of (K, N)
    } else {
      w.data = f32(info[3], size_t(K) * N, "w");
    }
    const float* bias = info[6].IsNull() || info[6].IsUndefined() ? nullptr : f32(info[6], N, "bias");
    Napi::Float32Array y = Napi::Float32Array::New(info.Env(), size_t(M) * N);
    if (use_ref(info[7])) {
      matmul_ref(x, M, K, w, bias, y.Data(), N, false);
    } else {
      matmul(x, M, K, w, bias, y.Data(), N, false, ThreadPool::global());
    }
    return y;
  });
}

// attention({func, len, blockCtx, heads, headDim, primeLen, encLen}, q, k, v, impl) -> out
Napi::Value AttentionJs(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = info[0].As<Napi::Object>();
    AttnShape s;
    s.func = get_int(o, "func");
    s.len = get_int(o, "len");
    s.block_ctx = get_int(o, "blockCtx");
    s.heads = get_int(o, "heads");
    s.head_dim = get_int(o, "headDim");
    s.prime_len = get_int_or(o, "primeLen", 0);
    s.enc_len = get_int_or(o, "encLen", 0);
    const int width = s.heads * s.head_dim;
    const int keys = s.func == 6 ? s.enc_len : s.len;
    const float* q = f32(info[1], size_t(s.len) * width, "q");
    const float* k = f32(info[2], size_t(keys) * width, "k");
    const float* v = f32(info[3], size_t(keys) * width, "v");
    Napi::Float32Array out = Napi::Float32Array::New(info.Env(), size_t(s.len) * width);
    if (use_ref(info[4])) {
      attention_ref(s, q, width, k, width, v, width, out.Data(), width);
    } else {
      attention_forward(s, q, width, k, width, v, width, out.Data(), width, ThreadPool::global());
    }
    return out;
  });
}

Napi::Value SetIsaJs(const Napi::CallbackInfo& info) {
  // "avx512", "avx2-fma" (or "avx2"), "generic"; clamped to what the CPU supports.
  const std::string want = info[0].ToString().Utf8Value();
  Isa isa = Isa::Avx2Fma;  // any other name: AVX2 as before
  parse_isa(want.c_str(), &isa);
  set_active_isa(isa);
  return Napi::String::New(info.Env(), isa_name(active_isa()));
}

Napi::Value InfoJs(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("isa", isa_name(active_isa()));
  o.Set("detectedIsa", isa_name(detected_isa()));
  o.Set("threads", ThreadPool::global().size());
  return o;
}

Napi::Value FmaPeakJs(const Napi::CallbackInfo& info) {
  const double secs = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0.2;
  FmaPeak p = measure_fma_peak(ThreadPool::global(), secs);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("gflopsOneThread", p.gflops_one_thread);
  o.Set("gflopsAllThreads", p.gflops_all_threads);
  o.Set("threads", p.threads);
  o.Set("isa", p.isa);
  return o;
}

// memBandwidth(megabytes?) -> {copyGBs, readGBs, threads, megabytes}: all the pool's threads
Napi::Value MemBandwidthJs(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const double mb = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 256;
    require(mb >= 1 && mb <= 4096, "ERR_INVALID_ARGUMENT", "memBandwidth: 1 to 4096 MB per buffer");
    const MemBandwidth m = measure_mem_bandwidth(ThreadPool::global(), mb);
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("copyGBs", m.copy_gbs);
    o.Set("readGBs", m.read_gbs);
    o.Set("threads", m.threads);
    o.Set("megabytes", m.megabytes);
    return o;
  });
}

}  // namespace

Napi::Object init_kernels_binding(Napi::Env env) {
  Napi::Object k = Napi::Object::New(env);
  k.Set("conv1d", Napi::Function::New(env, Conv1dJs));
  k.Set("matmul", Napi::Function::New(env, MatmulJs));
  k.Set("resblock", Napi::Function::New(env, ResblockJs));
  k.Set("benchConv", Napi::Function::New(env, BenchConvJs));
  k.Set("linear", Napi::Function::New(env, LinearJs));
  k.Set("attention", Napi::Function::New(env, AttentionJs));
  k.Set("vqNearest", Napi::Function::New(env, VqNearestJs));
  k.Set("setIsa", Napi::Function::New(env, SetIsaJs));
  k.Set("info", Napi::Function::New(env, InfoJs));
  k.Set("fmaPeak", Napi::Function::New(env, FmaPeakJs));
  k.Set("memBandwidth", Napi::Function::New(env, MemBandwidthJs));
  return k;
}

}  // namespace jb
