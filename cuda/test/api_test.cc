// The CUDA backend library through its C ABI (include/jukebox_cuda.h), loaded with dlopen as
// the addon loads it: discovery, contexts and buffers (round trips at offsets, bounds,
// accounting, out-of-memory with the message the addon shows), the self-test kernel, and
// attention_decode (a kernel on the context's stream, read back with buffer_read: the read
// must be ordered after the kernel) against the CPU reference for every attention type.
// Usage: jukebox-cuda-api-test path/to/libjukebox-cuda.so. Built by the emulation build
// (test/cuda-emu.test.ts runs it there); plain C++, so it runs against a GPU build as well.
// Prints one line per group and "ok N checks"; exits 1 on the first failure.
#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../include/jukebox_cuda.h"
#include "../kernels/ops_ref.h"
#include "check.h"

namespace {

const jb_cuda_api* api = nullptr;

#define API_OK(call) CHECK((call) == JB_CUDA_OK, "%s: %s", #call, api->last_error())

std::mt19937 rng(99);
std::normal_distribution<float> nd(0.0f, 1.0f);

void test_discovery(bool& emulated) {
  const uint64_t caps = api->capabilities();
  emulated = (caps & JB_CUDA_CAP_EMULATED) != 0;
  CHECK(caps & JB_CUDA_CAP_MEMORY, "capabilities 0x%llx", (unsigned long long)caps);
  CHECK(caps & JB_CUDA_CAP_ATTN_DECODE, "attention_decode is implemented: capabilities 0x%llx", (unsigned long long)caps);
  int count = 0;
  API_OK(api->device_count(&count));
  CHECK(count >= 1, "device count %d", count);
  jb_cuda_device_info info;
  API_OK(api->device_info(0, &info));
  std::printf("device 0: %s (sm_%d%d, %d SMs, %.0f MiB); %s\n", info.name, info.cc_major, info.cc_minor, info.multiprocessors,
              info.total_bytes / 1048576.0, api->build_info());
  if (emulated) {
    CHECK(std::strstr(info.name, "cuda (emulated on the CPU)") != nullptr, "an emulated device says so: %s", info.name);
    CHECK(std::strstr(api->build_info(), "cuda (emulated on the CPU)") != nullptr, "build info says so: %s", api->build_info());
  }
  API_OK(api->self_test(0));
  std::printf("discovery and the self-test kernel%s\n", emulated ? " (emulated device named as such)" : "");
}

void test_buffers() {
  jb_cuda_context* ctx = nullptr;
  API_OK(api->context_create(0, &ctx));
  jb_cuda_buffer *a = nullptr, *b = nullptr;
  API_OK(api->buffer_alloc(ctx, 1000, "buffer a", &a));
  API_OK(api->buffer_alloc(ctx, 24, "buffer b", &b));
  uint64_t held = 0, free_b = 0, total = 0;
  API_OK(api->memory_info(ctx, &held, &free_b, &total));
  CHECK(held == 1024, "the context holds 1000 + 24 bytes: %llu", (unsigned long long)held);
  std::vector<unsigned char> src(1000), dst(1000, 0);
  for (size_t i = 0; i < src.size(); ++i) src[i] = (unsigned char)(i * 7 + 3);
  API_OK(api->buffer_write(a, 0, src.data(), 1000));
  API_OK(api->buffer_write(a, 10, src.data() + 500, 100));  // overwrite a slice at an offset
  API_OK(api->buffer_read(a, 0, dst.data(), 1000));
  for (size_t i = 0; i < 1000; ++i) {
    const unsigned char want = (i >= 10 && i < 110) ? src[500 + i - 10] : src[i];
    CHECK(dst[i] == want, "byte %zu: %d, want %d", i, dst[i], want);
  }
  std::vector<unsigned char> part(7);
  API_OK(api->buffer_read(a, 993, part.data(), 7));
  CHECK(std::memcmp(part.data(), src.data() + 993, 7) == 0, "read at an offset");
  CHECK(api->buffer_write(a, 999, src.data(), 2) == JB_CUDA_ERR_INVALID_ARGUMENT, "a write past the end is refused");
  CHECK(api->buffer_read(b, 25, part.data(), 0) == JB_CUDA_ERR_INVALID_ARGUMENT, "an offset past the end is refused");
  CHECK(std::strstr(api->last_error(), "out of bounds") != nullptr, "the message says why: %s", api->last_error());
  api->buffer_free(b);
  API_OK(api->memory_info(ctx, &held, nullptr, nullptr));
  CHECK(held == 1000, "freeing returns its bytes: %llu", (unsigned long long)held);
  // out of memory: more than the device has, with the message the addon maps to ERR_OUT_OF_MEMORY
  jb_cuda_buffer* big = nullptr;
  const size_t too_much = size_t(total) + (size_t(64) << 20);
  CHECK(api->buffer_alloc(ctx, too_much, "the test's oversized buffer", &big) == JB_CUDA_ERR_OUT_OF_MEMORY, "oversized allocation: %s", api->last_error());
  const std::string msg = api->last_error();
  CHECK(big == nullptr, "no buffer on failure");
  CHECK(msg.find("out of GPU memory allocating") == 0 && msg.find("for the test's oversized buffer on ") != std::string::npos &&
            msg.find(" free of ") != std::string::npos && msg.find("this model holds 0.0 MiB") != std::string::npos,
        "OOM message: %s", msg.c_str());
  API_OK(api->memory_info(ctx, &held, nullptr, nullptr));
  CHECK(held == 1000, "a failed allocation holds nothing: %llu", (unsigned long long)held);
  API_OK(api->synchronize(ctx));
  api->context_destroy(ctx);  // frees a
  std::printf("buffers: round trips at offsets, bounds refused, accounting, out of memory (\"%s\")\n", msg.c_str());
}

std::vector<uint16_t> random_half(size_t n) {
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = jb::gpu::float_to_half_rne(nd(rng));
  return v;
}

// attention_decode through the ABI: caches and queries written with buffer_write, the kernel
// queued on the context's stream, the output read back at once (no synchronize in between).
void test_attention_decode() {
  jb_cuda_context* ctx = nullptr;
  API_OK(api->context_create(0, &ctx));
  struct Case {
    int func, len, bc, prime, enc, n, heads, dh;
  };
  int checked = 0;
  double worst = 0;
  for (const Case c : {Case{0, 512, 64, 0, 0, 1, 8, 150}, Case{1, 512, 64, 0, 0, 2, 2, 64}, Case{2, 512, 64, 0, 0, 1, 1, 480},
                       Case{3, 256, 32, 0, 0, 3, 3, 7}, Case{7, 300, 20, 45, 0, 2, 2, 32}, Case{6, 32, 8, 0, 384, 2, 4, 128}}) {
    jb::gpu::AttnGeom g;
    g.func = c.func;
    g.len = c.len;
    g.block_ctx = c.bc;
    g.prime_len = c.prime;
    g.enc_len = c.enc;
    const size_t cache = jb::gpu::kv_elements(g, c.n, c.heads, c.dh), st = size_t(c.heads) * c.dh;
    const std::vector<uint16_t> kc = random_half(cache), vc = random_half(cache);
    jb_cuda_buffer *dk = nullptr, *dv = nullptr, *dq = nullptr, *dout = nullptr;
    API_OK(api->buffer_alloc(ctx, cache * 2, "k cache", &dk));
    API_OK(api->buffer_alloc(ctx, cache * 2, "v cache", &dv));
    API_OK(api->buffer_alloc(ctx, size_t(c.n) * st * 4, "q", &dq));
    API_OK(api->buffer_alloc(ctx, size_t(c.n) * st * 4, "out", &dout));
    API_OK(api->buffer_write(dk, 0, kc.data(), cache * 2));
    API_OK(api->buffer_write(dv, 0, vc.data(), cache * 2));
    for (int pos : {0, 1, c.bc - 1, c.bc, c.len / 2 + 3, c.len - 1}) {
      std::vector<float> q(size_t(c.n) * st), want(q.size()), got(q.size());
      for (auto& x : q) x = nd(rng);
      API_OK(api->buffer_write(dq, 0, q.data(), q.size() * 4));
      jb_cuda_attn_decode_args a;
      std::memset(&a, 0, sizeof a);
      a.func = c.func;
      a.samples = c.n;
      a.heads = c.heads;
      a.head_dim = c.dh;
      a.len = c.len;
      a.block_ctx = c.bc;
      a.prime_len = c.prime;
      a.enc_len = c.enc;
      a.pos = pos;
      a.q = dq;
      a.k_cache = dk;
      a.v_cache = dv;
      a.out = dout;
      API_OK(api->attention_decode(ctx, &a));
      API_OK(api->buffer_read(dout, 0, got.data(), got.size() * 4));  // ordered after the kernel
      jb::gpu_ref::attend_decode(g, pos, c.n, c.heads, c.dh, q.data(), kc.data(), vc.data(), want.data());
      double err = 0;
      for (size_t i = 0; i < got.size(); ++i) err = std::max(err, std::fabs(double(got[i]) - want[i]));
      CHECK(err <= 3e-5, "attention_decode type %d pos %d: max err %.3e", c.func, pos, err);
      worst = std::max(worst, err);
      ++checked;
    }
    jb_cuda_attn_decode_args bad;
    std::memset(&bad, 0, sizeof bad);
    bad.func = c.func;
    bad.samples = c.n;
    bad.heads = c.heads;
    bad.head_dim = c.dh;
    bad.len = c.len;
    bad.block_ctx = c.bc;
    bad.enc_len = c.enc;
    bad.pos = c.len;  // past the window
    bad.q = dq;
    bad.k_cache = dk;
    bad.v_cache = dv;
    bad.out = dout;
    CHECK(api->attention_decode(ctx, &bad) == JB_CUDA_ERR_INVALID_ARGUMENT, "a position past the window is refused");
    bad.pos = 0;
    bad.out = dk;  // too small for the output? (a cache is larger; use q's size instead)
    bad.samples = c.n + 1;  // more samples than the buffers hold
    CHECK(api->attention_decode(ctx, &bad) == JB_CUDA_ERR_INVALID_ARGUMENT, "buffers too small are refused");
    CHECK(std::strstr(api->last_error(), " are needed") != nullptr, "and the message says which: %s", api->last_error());
    api->buffer_free(dk);
    api->buffer_free(dv);
    api->buffer_free(dq);
    api->buffer_free(dout);
  }
  api->context_destroy(ctx);
  std::printf("attention_decode through the ABI: types 0,1,2,3,6,7, %d positions, max err %.2e (ordered on the context stream)\n", checked, worst);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s path/to/libjukebox-cuda.so\n", argv[0]);
    return 2;
  }
  void* h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  CHECK(h != nullptr, "dlopen %s: %s", argv[1], dlerror());
  auto version = reinterpret_cast<jb_cuda_api_version_fn>(dlsym(h, "jb_cuda_api_version"));
  auto get = reinterpret_cast<jb_cuda_get_api_fn>(dlsym(h, "jb_cuda_get_api"));
  CHECK(version && get, "the library exports jb_cuda_api_version and jb_cuda_get_api");
  CHECK(version() == JB_CUDA_API_VERSION, "API version %u, this test %u", version(), JB_CUDA_API_VERSION);
  api = get(JB_CUDA_API_VERSION);
  CHECK(api && api->struct_size >= sizeof(jb_cuda_api), "function table");
  bool emulated = false;
  test_discovery(emulated);
  test_buffers();
  test_attention_decode();
  std::printf("ok %ld checks\n", g_checks);
  return 0;
}
