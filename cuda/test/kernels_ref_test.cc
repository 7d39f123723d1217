// CPU test (no CUDA) of what the CUDA kernels rest on, run by test/cuda-helpers.test.ts with
// g++: the fp16 conversion used at weight upload (exhaustive against csrc/core/half.h and
// round-to-nearest-even by brute force), the GEMV split plan, and the kernels' references
// (../kernels/ops_ref.h) against the CPU engine's own ops: matmul_ref with fp16 weights in
// both layouts and the transformer's layer_norm, bit for bit.
// Prints one line per check group and "ok N checks"; exits 1 on the first failure.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <random>
#include <vector>

#include "../../csrc/core/half.h"
#include "../../csrc/core/philox.h"
#include "../../common/philox.h"
#include "../../csrc/cpu/attention.h"
#include "../../csrc/cpu/matmul.h"
#include "../../csrc/model/transformer.h"
#include "../common/gemv_plan.h"
#include "../../common/half_convert.h"
#include "../kernels/ops_ref.h"

namespace g = jb::gpu;

#include "check.h"

static uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

static void test_half_conversion() {
  // every half: to float as the engine does, and back unchanged (NaNs stay NaN)
  for (uint32_t h = 0; h < 65536; ++h) {
    const float a = g::half_to_float_bits(uint16_t(h)), b = jb::half_to_float(uint16_t(h));
    CHECK(bits(a) == bits(b), "half %04x: %g vs %g", h, a, b);
    const uint16_t back = g::float_to_half_rne(a);
    if (std::isnan(a)) CHECK(std::isnan(g::half_to_float_bits(back)), "NaN %04x", h);
    else CHECK(back == h, "half %04x -> %g -> %04x", h, a, back);
  }
  // random floats over the whole range: the result is a nearest half, ties to even
  std::mt19937 rng(7);
  auto nearest_ok = [](float f, uint16_t h) {
    const double x = f, v = g::half_to_float_bits(h);
    if (std::isinf(v)) return std::fabs(x) >= 65520.0;  // rounds past the largest half
    // neighbours of h (same sign direction) must not be closer
    for (int d : {-1, 1}) {
      const uint16_t n = uint16_t(h + d);
      if ((n & 0x7c00) == 0x7c00 || ((h ^ n) & 0x8000)) continue;
      const double w = g::half_to_float_bits(n);
      const double dv = std::fabs(x - v), dw = std::fabs(x - w);
      if (dw < dv) return false;
      if (dw == dv && (h & 1)) return false;  // a tie goes to the even one
    }
    return true;
  };
  int n = 0;
  for (int i = 0; i < 2000000; ++i) {
    float f;
    const uint32_t u = rng();
    std::memcpy(&f, &u, 4);
    if (std::isnan(f)) continue;
    // bias toward the half range, where it matters
    if (i % 2) f = std::ldexp(float(rng() % 2048) / 2048.0f + 1.0f, int(rng() % 44) - 28) * (rng() % 2 ? 1.0f : -1.0f);
    const uint16_t h = g::float_to_half_rne(f);
    CHECK(nearest_ok(f, h), "float %.9g -> %04x (%g)", f, h, g::half_to_float_bits(h));
    ++n;
  }
  // exact ties and edges
  CHECK(g::float_to_half_rne(1.0f + 1.0f / 2048) == 0x3c00, "1 + 2^-11 ties to 1");
  CHECK(g::float_to_half_rne(1.0f + 3.0f / 2048) == 0x3c02, "1 + 3*2^-11 ties to even");
  CHECK(g::float_to_half_rne(65504.0f) == 0x7bff && g::float_to_half_rne(65520.0f) == 0x7c00, "max half, overflow");
  CHECK(g::float_to_half_rne(std::ldexp(1.0f, -25)) == 0x0000 && g::float_to_half_rne(std::ldexp(1.5f, -25)) == 0x0001, "smallest subnormal");
  CHECK(g::float_to_half_rne(-0.0f) == 0x8000, "-0");
  std::printf("fp16 conversion: all 65536 halves round-trip, %d random floats round to the nearest (ties to even)\n", n);
}

static void test_gemv_plan() {
  for (int K : {1, 7, 64, 1023, 1536, 4096, 4800, 6144})
    for (int N : {1, 3, 255, 256, 257, 1536, 4800, 18432})
      for (int want : {1, 64, 264}) {
        const g::GemvPlan p = g::gemv_plan(K, N, want);
        CHECK(p.col_blocks * g::kGemvThreads * g::kGemvColsPerThread >= N, "columns covered");
        CHECK(p.split_k >= 1 && p.k_per_split >= 1 && p.split_k * p.k_per_split >= K, "K covered");
        CHECK((p.split_k - 1) * p.k_per_split < K, "no empty split K=%d N=%d", K, N);
        CHECK(p.split_k == 1 || p.k_per_split >= g::kGemvMinKPerSplit / 2, "splits not too thin");
      }
  const g::GemvPlan big = g::gemv_plan(4800, 4800, 264);
  CHECK(big.col_blocks * big.split_k >= 132, "a 4800x4800 GEMV fills an H100's 132 SMs (%d blocks)", big.col_blocks * big.split_k);
  std::printf("GEMV plan: every column and k covered once, no empty split; 4800x4800 -> %d x %d blocks\n", big.col_blocks, big.split_k);
}

static void test_refs_vs_engine() {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  int shapes = 0;
  for (int M : {1, 3, 16})
    for (int K : {1, 5, 64, 257})
      for (int N : {1, 7, 130})
        for (bool transposed : {false, true}) {
          std::vector<float> x(size_t(M) * K), bias(N), want(size_t(M) * N), got(size_t(M) * N);
          std::vector<uint16_t> w(size_t(K) * N);
          for (auto& v : x) v = nd(rng);
          for (auto& v : bias) v = nd(rng);
          for (auto& v : w) v = g::float_to_half_rne(nd(rng) * 0.1f);
          jb::WeightView wv;
          wv.data = w.data();
          wv.dtype = jb::DType::F16;
          wv.k = K;
          wv.n = N;
          wv.transposed = transposed;
          jb::matmul_ref(x.data(), M, K, wv, bias.data(), want.data(), N, false);
          jb::gpu_ref::gemv_f16(x.data(), M, K, N, w.data(), transposed, bias.data(), got.data());
          for (size_t i = 0; i < got.size(); ++i) CHECK(bits(got[i]) == bits(want[i]), "gemv ref M=%d K=%d N=%d t=%d [%zu]", M, K, N, transposed, i);
          ++shapes;
        }
  for (int rows : {1, 4})
    for (int width : {1, 3, 64, 1000}) {
      std::vector<float> x(size_t(rows) * width), gw(width), gb(width), want(x.size()), got(x.size());
      for (auto& v : x) v = nd(rng) * 3.0f + 0.5f;
      for (auto& v : gw) v = nd(rng);
      for (auto& v : gb) v = nd(rng);
      jb::layer_norm(x.data(), rows, width, jb::LayerNormW{gw.data(), gb.data()}, want.data());
      jb::gpu_ref::layer_norm(x.data(), rows, width, gw.data(), gb.data(), got.data());
      for (size_t i = 0; i < got.size(); ++i) CHECK(bits(got[i]) == bits(want[i]), "layer_norm ref rows=%d width=%d [%zu]", rows, width, i);
    }
  std::printf("kernel references equal the engine: matmul_ref with fp16 weights (%d shapes, both layouts) and layer_norm, bit for bit\n", shapes);
}

// The decode attention reference, walked over a whole window with kv_store (or the encoder
// fill), against the engine's full-window attention_ref on the same fp16-rounded keys/values.
static void test_attend_decode_ref() {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  double worst = 0;
  int steps = 0;
  struct G {
    int func, len, bc, prime, enc;
  };
  for (const G c : {G{0, 40, 8, 0, 0}, G{1, 40, 8, 0, 0}, G{2, 40, 8, 0, 0}, G{3, 40, 8, 0, 0}, G{6, 24, 8, 0, 13}, G{7, 40, 8, 17, 0},
                    G{2, 36, 4, 0, 0}, G{3, 16, 16, 0, 0}})
    for (const int heads : {1, 3}) {
      const int dh = 5, st = heads * dh, n = 2;
      g::AttnGeom a;
      a.func = c.func;
      a.len = c.len;
      a.block_ctx = c.bc;
      a.prime_len = c.prime;
      a.enc_len = c.enc;
      const int keys = g::attn_key_positions(a);
      std::vector<float> q(size_t(n) * c.len * st), k(size_t(n) * keys * st), v(k.size());
      for (auto& x : q) x = nd(rng) * 2;
      for (auto& x : k) x = jb::half_to_float(g::float_to_half_rne(nd(rng)));  // what the fp16 cache holds
      for (auto& x : v) x = jb::half_to_float(g::float_to_half_rne(nd(rng)));
      jb::AttnShape s;
      s.func = c.func;
      s.len = c.len;
      s.block_ctx = c.bc;
      s.heads = heads;
      s.head_dim = dh;
      s.prime_len = c.prime;
      s.enc_len = c.enc;
      std::vector<float> want(size_t(n) * c.len * st);
      for (int b = 0; b < n; ++b)
        jb::attention_ref(s, q.data() + size_t(b) * c.len * st, st, k.data() + size_t(b) * keys * st, st, v.data() + size_t(b) * keys * st, st,
                          want.data() + size_t(b) * c.len * st, st);
      const size_t cache = g::kv_elements(a, n, heads, dh);
      std::vector<uint16_t> kc(cache, 0x7e00), vc(cache, 0x7e00);  // NaN: a row read before it is written shows
      if (c.func == 6) jb::gpu_ref::kv_fill_encoder(c.enc, n, heads, dh, k.data(), v.data(), st, kc.data(), vc.data());
      std::vector<float> qs(size_t(n) * st), ks(qs.size()), vs(qs.size()), out(qs.size());
      for (int pos = 0; pos < c.len; ++pos) {
        for (int b = 0; b < n; ++b)
          for (int i = 0; i < st; ++i) {
            qs[size_t(b) * st + i] = q[(size_t(b) * c.len + pos) * st + i];
            if (c.func != 6) {
              ks[size_t(b) * st + i] = k[(size_t(b) * keys + pos) * st + i];
              vs[size_t(b) * st + i] = v[(size_t(b) * keys + pos) * st + i];
            }
          }
        if (c.func != 6) jb::gpu_ref::kv_store(a, pos, n, heads, dh, ks.data(), vs.data(), st, kc.data(), vc.data());
        jb::gpu_ref::attend_decode(a, pos, n, heads, dh, qs.data(), kc.data(), vc.data(), out.data());
        for (int b = 0; b < n; ++b)
          for (int i = 0; i < st; ++i) {
            const double d = std::fabs(double(out[size_t(b) * st + i]) - want[(size_t(b) * c.len + pos) * st + i]);
            CHECK(d < 1e-5, "attend_decode ref func %d pos %d sample %d [%d]: %g vs %g", c.func, pos, b, i, out[size_t(b) * st + i],
                  want[(size_t(b) * c.len + pos) * st + i]);
            worst = std::max(worst, d);
          }
        ++steps;
      }
    }
  std::printf("decode attention reference over the fp16 caches equals attention_ref for types 0,1,2,3,6,7 (%d steps, max |diff| %.2e)\n", steps, worst);
}

static void test_philox() {
  // Random123's known-answer vectors for philox4x32_10 (kat_vectors): counter, key -> output
  struct Kat {
    uint32_t ctr[4], key[2], out[4];
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu}, {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u}, {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (const Kat& k : kats) {
    uint32_t c[4] = {k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3]};
    g::philox_generate(c, uint64_t(k.key[0]) | (uint64_t(k.key[1]) << 32));
    for (int i = 0; i < 4; ++i) CHECK(c[i] == k.out[i], "philox KAT word %d: %08x vs %08x", i, c[i], k.out[i]);
  }
  // the engine's RNG is this one
  CHECK(jb::Philox4x32::uniform(7, 1, 2, 3, g::kTokenDrawTag) == g::philox_uniform(7, 1, 2, 3, g::kTokenDrawTag), "engine uses cuda/common");
  std::printf("Philox4x32-10 matches Random123's known answers; the engine draws through the same code\n");
}

int main() {
  test_philox();
  test_half_conversion();
  test_gemv_plan();
  test_refs_vs_engine();
  test_attend_decode_ref();
  std::printf("ok %ld checks\n", g_checks);
  return 0;
}
