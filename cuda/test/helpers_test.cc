// CPU test of the __host__ __device__ helpers in cuda/common/, compiled with a plain C++
// compiler (no CUDA) by test/cuda-helpers.test.ts:
//   g++ -std=c++17 -O1 -pthread -Icsrc cuda/test/helpers_test.cc csrc/cpu/vec.cc
//       csrc/cpu/vec_avx2.cc csrc/cpu/cpu_features.cc csrc/core/thread_pool.cc
// It includes the CPU engine's attention.cc and kv_cache.cc into this translation unit so
// it can call their internal functions (visible_keys, score_scale) and compares the helpers
// with them key by key, row by row, and numerically (attention through the helpers' index
// maps and online-softmax merges against attention_ref / attention_forward).
// Prints one line per check and "ok N checks" at the end; exits 1 on the first failure.
#include "../../csrc/cpu/attention.cc"
#include "../../csrc/model/kv_cache.cc"

#include <cstdio>
#include <functional>
#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "../../common/attn_index.h"
#include "../../common/kv_layout.h"
#include "../common/online_softmax.h"

#if defined(__CUDACC__)
#error "this test is compiled as plain C++ (JB_HD must expand to inline)"
#endif

namespace g = jb::gpu;

#include "check.h"

struct Case {
  int func, len, bc, prime_len, enc_len;
};

static std::vector<Case> cases() {
  std::vector<Case> c;
  for (int func : {0, 1, 2, 3, 6, 7})
    for (int bc : {1, 4, 8, 16})
      for (int blocks : {1, 3, 8}) {
        const int len = bc * blocks;
        c.push_back({func, len, bc, func == 7 ? std::max(1, len / 3) : 0, func == 6 ? 5 + bc : 0});
        if (func == 7) c.push_back({func, len, bc, len, 0});       // prime covering the window
        if (func == 7) c.push_back({func, len, bc, len + 4, 0});   // longer than the window
      }
  return c;
}

static jb::AttnShape cpu_shape(const Case& k, int heads = 1, int dh = 1) {
  jb::AttnShape s;
  s.func = k.func;
  s.len = k.len;
  s.block_ctx = k.bc;
  s.heads = heads;
  s.head_dim = dh;
  s.prime_len = k.prime_len;
  s.enc_len = k.enc_len;
  return s;
}
static g::AttnGeom geom(const Case& k) {
  g::AttnGeom a;
  a.func = k.func;
  a.len = k.len;
  a.block_ctx = k.bc;
  a.prime_len = k.prime_len;
  a.enc_len = k.enc_len;
  return a;
}

static std::string name(const Case& k) {
  return "func " + std::to_string(k.func) + " len " + std::to_string(k.len) + " bc " + std::to_string(k.bc) +
         " prime " + std::to_string(k.prime_len) + " enc " + std::to_string(k.enc_len);
}

// 1. Prefill key sets: the helpers' spans and predicate against the CPU engine's visible_keys.
static void test_key_sets() {
  for (const Case& k : cases()) {
    const jb::AttnShape s = cpu_shape(k);
    const g::AttnGeom a = geom(k);
    CHECK(g::attn_func_supported(k.func) == jb::attention_func_supported(k.func), "%s", name(k).c_str());
    const int keys = g::attn_key_positions(a);
    for (int i = 0; i < k.len; ++i) {
      const jb::KeyRange r = jb::visible_keys(s, i);
      const g::KeySpan sp = g::visible_keys(a, i);
      std::set<int> cpu, gpu, pred;
      if (!r.zero_output)
        for (int j = r.first; j <= r.last; j += r.step) cpu.insert(j);
      for (int t = 0; t < sp.count; ++t) gpu.insert(sp.at(t));
      for (int j = 0; j < keys; ++j)
        if (g::key_visible(a, i, j)) pred.insert(j);
      CHECK(r.zero_output == sp.zero_output, "%s i %d", name(k).c_str(), i);
      CHECK(cpu == gpu, "%s i %d: key sets differ (cpu %zu keys, helper %zu)", name(k).c_str(), i, cpu.size(), gpu.size());
      CHECK(pred == gpu, "%s i %d: predicate and span differ", name(k).c_str(), i);
      CHECK(sp.count == int(gpu.size()), "%s i %d: count", name(k).c_str(), i);
    }
  }
  for (int d = 1; d <= 512; ++d) CHECK(g::attn_score_scale(d) == jb::score_scale(d), "head_dim %d", d);
  std::printf("key sets of types 0,1,2,3,6,7 equal the CPU engine's visible_keys (%zu shapes)\n", cases().size());
}

// 2. Tiles: classify_tile and key_bounds against brute force over every (query, key) pair.
static void test_tiles() {
  long tiles = 0;
  for (const Case& k : cases()) {
    const g::AttnGeom a = geom(k);
    const int keys = g::attn_key_positions(a);
    for (int tq : {1, 3, 8, 16})
      for (int tk : {1, 4, 8, 5}) {
        for (int q0 = 0; q0 < k.len; q0 += tq) {
          const int q1 = std::min(k.len, q0 + tq);
          const g::KeyBounds kb = g::key_bounds(a, q0, q1);
          int lo = keys, hi = 0;
          for (int i = q0; i < q1; ++i)
            for (int j = 0; j < keys; ++j)
              if (g::key_visible(a, i, j)) lo = std::min(lo, j), hi = std::max(hi, j + 1);
          if (hi > lo) {
            CHECK(kb.lo == lo && kb.hi == hi, "%s tile q %d..%d bounds", name(k).c_str(), q0, q1);
          } else {
            CHECK(kb.hi <= kb.lo, "%s tile q %d..%d: expected no keys", name(k).c_str(), q0, q1);
          }
          for (int k0 = 0; k0 < keys; k0 += tk) {
            const int k1 = std::min(keys, k0 + tk);
            int vis = 0;
            for (int i = q0; i < q1; ++i)
              for (int j = k0; j < k1; ++j) vis += g::key_visible(a, i, j);
            const int total = (q1 - q0) * (k1 - k0);
            const g::TileKind want = vis == 0 ? g::kTileEmpty : vis == total ? g::kTileFull : g::kTilePartial;
            CHECK(g::classify_tile(a, q0, q1, k0, k1) == want, "%s tile q %d..%d k %d..%d", name(k).c_str(), q0, q1, k0, k1);
            // every visible pair lies inside the bounds
            if (vis) CHECK(k0 < kb.hi && k1 > kb.lo, "%s tile outside bounds", name(k).c_str());
            ++tiles;
          }
        }
      }
  }
  std::printf("tile classification and key bounds equal brute force (%ld tiles)\n", tiles);
}

// 3. Column attention in the permuted (cache) order is row attention with block_ctx = blocks.
static void test_column_permutation() {
  for (int bc : {1, 3, 8})
    for (int len : {bc, 5 * bc, 5 * bc + 2, 7}) {
      g::AttnGeom col;
      col.func = g::kAttnColumn;
      col.len = len;
      col.block_ctx = bc;
      const g::AttnGeom row = g::column_as_row(col);
      const int blocks = g::column_blocks(col);
      std::set<int> seen;
      for (int p = 0; p < len; ++p) {
        const int t = g::column_permute(p, bc, blocks);
        CHECK(t >= 0 && t < row.len && g::column_unpermute(t, bc, blocks) == p, "bc %d len %d p %d", bc, len, p);
        seen.insert(t);
        if (len % bc == 0) CHECK(t == g::kv_put_row(col, p), "permutation is the cache's column row");
      }
      CHECK(int(seen.size()) == len, "permutation is injective");
      for (int i = 0; i < len; ++i)
        for (int j = 0; j < len; ++j)
          CHECK(g::key_visible(col, i, j) ==
                    g::key_visible(row, g::column_permute(i, bc, blocks), g::column_permute(j, bc, blocks)),
                "bc %d len %d i %d j %d", bc, len, i, j);
    }
  std::printf("column attention permuted to the cache order equals row attention\n");
}

// 4. KV cache rows: kv_rows / kv_put_row / kv_run against LayerKVCache (put, keys_for, bytes).
static void test_kv_cache() {
  const int n = 2, state = 3;
  for (const Case& k : cases()) {
    const g::AttnGeom a = geom(k);
    jb::LayerKVCache cache(k.func, n, state, k.len, k.bc, k.prime_len, k.enc_len);
    const int rows = g::kv_rows(a);
    CHECK(cache.bytes() == size_t(2) * n * rows * state * sizeof(float), "%s rows %d", name(k).c_str(), rows);
    auto tag = [](int b, int pos) { return float(1 + pos + 1000 * b); };
    if (k.func == 6)
      for (int b = 0; b < n; ++b)
        for (int j = 0; j < k.enc_len; ++j)
          for (int c = 0; c < state; ++c) cache.enc_k(b)[size_t(j) * state + c] = cache.enc_v(b)[size_t(j) * state + c] = tag(b, j);
    for (int pos = 0; pos < k.len; ++pos) {
      for (int b = 0; b < n; ++b) {
        const float kv[state] = {tag(b, pos), tag(b, pos), tag(b, pos)};
        // mark the put row, as the CPU cache writes it
        cache.put(b, pos, kv, kv);
        const int row = g::kv_put_row(a, pos);
        if (row >= 0) {
          CHECK(row < rows, "%s pos %d row %d", name(k).c_str(), pos, row);
          CHECK(cache.enc_k(b)[size_t(row) * state] == tag(b, pos), "%s pos %d: put row %d", name(k).c_str(), pos, row);
        }
        const jb::LayerKVCache::Run r = cache.keys_for(b, pos);
        const g::KVRun gr = g::kv_run(a, pos);
        CHECK(r.zero_output == gr.zero_output, "%s pos %d", name(k).c_str(), pos);
        if (r.zero_output) continue;
        CHECK(r.count == gr.count, "%s pos %d count %d vs %d", name(k).c_str(), pos, r.count, gr.count);
        CHECK(r.k == cache.enc_k(b) + size_t(gr.first_row) * state, "%s pos %d first row %d", name(k).c_str(), pos, gr.first_row);
        CHECK(gr.first_row >= 0 && gr.first_row + gr.count <= rows, "%s pos %d run inside the cache", name(k).c_str(), pos);
        const g::KeySpan sp = g::visible_keys(a, pos);
        CHECK(sp.count == gr.count, "%s pos %d: run and prefill span disagree", name(k).c_str(), pos);
        for (int t = 0; t < gr.count; ++t) {
          const int p = g::kv_run_position(a, pos, t);
          CHECK(p == sp.at(t), "%s pos %d t %d", name(k).c_str(), pos, t);
          CHECK(r.k[size_t(t) * state] == tag(b, p), "%s pos %d t %d: row holds %g, want position %d", name(k).c_str(), pos, t,
                double(r.k[size_t(t) * state]), p);
        }
      }
    }
    // Element addressing: the head-major GPU index and the CPU row-major index are bijections.
    for (int heads : {1, 2, 3}) {
      const int dh = 4;
      std::vector<int> hit_g(g::kv_elements(a, n, heads, dh)), hit_c(hit_g.size());
      for (int b = 0; b < n; ++b)
        for (int h = 0; h < heads; ++h)
          for (int row = 0; row < rows; ++row)
            for (int d = 0; d < dh; ++d) {
              ++hit_g[g::kv_index(rows, heads, dh, b, h, row, d)];
              ++hit_c[g::kv_index_row_major(rows, heads, dh, b, h, row, d)];
            }
      for (size_t e = 0; e < hit_g.size(); ++e) CHECK(hit_g[e] == 1 && hit_c[e] == 1, "%s element %zu", name(k).c_str(), e);
    }
  }
  std::printf("KV cache rows, runs and positions equal csrc/model/kv_cache.cc (%zu shapes)\n", cases().size());
}

// Attention of query i through the helpers, the way a split kernel computes it: the key run
// in chunks of `chunk` keys, each an online-softmax partial, merged in a tree.
static void attend_split(const g::AttnGeom& a, int i, const float* q, int dh, float scale, int chunk,
                         const std::function<const float*(int t, bool value)>& key_row, int count, bool zero, float* out) {
  if (zero || count == 0) {
    std::fill(out, out + dh, 0.0f);
    return;
  }
  std::vector<g::SoftmaxPartial> parts;
  std::vector<std::vector<float>> accs;
  for (int t0 = 0; t0 < count; t0 += chunk) {
    g::SoftmaxPartial st = g::softmax_empty();
    std::vector<float> acc(dh, 0.0f);
    for (int t = t0; t < std::min(count, t0 + chunk); ++t) {
      const float* kr = key_row(t, false);
      float dot = 0;
      for (int d = 0; d < dh; ++d) dot += q[d] * kr[d];
      g::softmax_push(st, acc.data(), dot * scale, key_row(t, true), dh);
    }
    parts.push_back(st);
    accs.push_back(acc);
  }
  // pairwise tree merge, then an empty partial merged in (identity)
  for (size_t width = 1; width < parts.size(); width *= 2)
    for (size_t x = 0; x + width < parts.size(); x += 2 * width)
      g::softmax_merge(parts[x], accs[x].data(), parts[x + width], accs[x + width].data(), dh);
  std::vector<float> zero_acc(dh, 0.0f);
  g::softmax_merge(parts[0], accs[0].data(), g::softmax_empty(), zero_acc.data(), dh);
  g::softmax_finish(parts[0], accs[0].data(), out, dh);
}

// 5. Prefill and decode attention through the helpers against attention_ref and
// attention_forward, on random q/k/v.
static void test_attention_numerics() {
  std::mt19937 rng(1234);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  jb::ThreadPool pool(2);
  double worst_ref = 0, worst_fast = 0, worst_decode = 0;
  int shapes = 0;
  for (const Case& k : cases()) {
    if (k.len < 4) continue;
    const int heads = 2, dh = 8, st = heads * dh;
    const g::AttnGeom a = geom(k);
    const int keys = g::attn_key_positions(a);
    std::vector<float> q(size_t(k.len) * st), kk(size_t(keys) * st), vv(size_t(keys) * st);
    for (float& x : q) x = 2 * nd(rng);
    for (float& x : kk) x = nd(rng);
    for (float& x : vv) x = nd(rng);
    const jb::AttnShape s = cpu_shape(k, heads, dh);
    std::vector<float> ref(q.size()), fast(q.size()), mine(q.size()), dec(q.size());
    jb::attention_ref(s, q.data(), st, kk.data(), st, vv.data(), st, ref.data(), st);
    jb::attention_forward(s, q.data(), st, kk.data(), st, vv.data(), st, fast.data(), st, pool);
    const float scale = g::attn_score_scale(dh);
    // prefill: spans over the full K/V
    for (int i = 0; i < k.len; ++i)
      for (int h = 0; h < heads; ++h) {
        const g::KeySpan sp = g::visible_keys(a, i);
        auto row = [&](int t, bool value) {
          return (value ? vv.data() : kk.data()) + size_t(sp.at(t)) * st + h * dh;
        };
        attend_split(a, i, q.data() + size_t(i) * st + h * dh, dh, scale, 3, row, sp.count, sp.zero_output,
                     mine.data() + size_t(i) * st + h * dh);
      }
    // decode: a head-major cache written with kv_put_row, read with kv_run
    const int rows = g::kv_rows(a);
    std::vector<float> kc(g::kv_elements(a, 1, heads, dh), NAN), vc(kc.size(), NAN);
    if (k.func == 6)
      for (int j = 0; j < k.enc_len; ++j)
        for (int h = 0; h < heads; ++h)
          for (int d = 0; d < dh; ++d) {
            kc[g::kv_index(rows, heads, dh, 0, h, j, d)] = kk[size_t(j) * st + h * dh + d];
            vc[g::kv_index(rows, heads, dh, 0, h, j, d)] = vv[size_t(j) * st + h * dh + d];
          }
    for (int pos = 0; pos < k.len; ++pos) {
      const int prow = g::kv_put_row(a, pos);
      if (prow >= 0)
        for (int h = 0; h < heads; ++h)
          for (int d = 0; d < dh; ++d) {
            kc[g::kv_index(rows, heads, dh, 0, h, prow, d)] = kk[size_t(pos) * st + h * dh + d];
            vc[g::kv_index(rows, heads, dh, 0, h, prow, d)] = vv[size_t(pos) * st + h * dh + d];
          }
      const g::KVRun run = g::kv_run(a, pos);
      for (int h = 0; h < heads; ++h) {
        auto row = [&](int t, bool value) {
          return (value ? vc.data() : kc.data()) + g::kv_index(rows, heads, dh, 0, h, run.first_row + t, 0);
        };
        attend_split(a, pos, q.data() + size_t(pos) * st + h * dh, dh, scale, 5, row, run.count, run.zero_output,
                     dec.data() + size_t(pos) * st + h * dh);
      }
    }
    for (size_t e = 0; e < q.size(); ++e) {
      CHECK(std::isfinite(mine[e]) && std::isfinite(dec[e]), "%s element %zu not finite", name(k).c_str(), e);
      worst_ref = std::max(worst_ref, double(std::fabs(mine[e] - ref[e])));
      worst_fast = std::max(worst_fast, double(std::fabs(mine[e] - fast[e])));
      worst_decode = std::max(worst_decode, double(std::fabs(dec[e] - fast[e])));
    }
    ++shapes;
  }
  CHECK(worst_ref < 2e-5 && worst_fast < 2e-5 && worst_decode < 2e-5, "max |diff| ref %.3g fast %.3g decode %.3g", worst_ref,
        worst_fast, worst_decode);
  std::printf("attention through the helpers (split online softmax): %d shapes, max |diff| vs attention_ref %.2e, "
              "vs attention_forward %.2e, decode via the cache layout vs attention_forward %.2e\n",
              shapes, worst_ref, worst_fast, worst_decode);
}

// 6. The combine op: associative and commutative up to rounding, identity, empty -> 0.
static void test_online_softmax() {
  std::mt19937 rng(99);
  std::normal_distribution<float> nd(0.0f, 4.0f);
  const int d = 5;
  double worst = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 1 + int(rng() % 40);
    std::vector<float> sc(n), v(size_t(n) * d);
    for (float& x : sc) x = nd(rng);
    for (float& x : v) x = nd(rng);
    // direct softmax in double
    double mx = -1e300, sum = 0;
    for (float x : sc) mx = std::max(mx, double(x));
    std::vector<double> want(d, 0.0);
    for (int j = 0; j < n; ++j) sum += std::exp(sc[j] - mx);
    for (int j = 0; j < n; ++j)
      for (int c = 0; c < d; ++c) want[c] += std::exp(sc[j] - mx) / sum * v[size_t(j) * d + c];
    // pieces at random cut points, merged right-to-left and left-to-right
    std::vector<int> cuts = {0};
    for (int j = 1; j < n; ++j)
      if (rng() % 3 == 0) cuts.push_back(j);
    cuts.push_back(n);
    const int pieces = int(cuts.size()) - 1;
    std::vector<g::SoftmaxPartial> p(pieces, g::softmax_empty());
    std::vector<std::vector<float>> acc(pieces, std::vector<float>(d, 0.0f));
    for (int x = 0; x < pieces; ++x)
      for (int j = cuts[x]; j < cuts[x + 1]; ++j) g::softmax_push(p[x], acc[x].data(), sc[j], &v[size_t(j) * d], d);
    g::SoftmaxPartial l2r = p[0], r2l = p[pieces - 1];
    std::vector<float> al = acc[0], ar = acc[pieces - 1];
    for (int x = 1; x < pieces; ++x) g::softmax_merge(l2r, al.data(), p[x], acc[x].data(), d);
    for (int x = pieces - 2; x >= 0; --x) g::softmax_merge(r2l, ar.data(), p[x], acc[x].data(), d);  // reversed order
    std::vector<float> ol(d), orr(d);
    g::softmax_finish(l2r, al.data(), ol.data(), d);
    g::softmax_finish(r2l, ar.data(), orr.data(), d);
    for (int c = 0; c < d; ++c) worst = std::max({worst, std::fabs(ol[c] - want[c]), std::fabs(orr[c] - want[c])});
  }
  CHECK(worst < 1e-5, "online softmax vs direct: %.3g", worst);
  // empty partials
  g::SoftmaxPartial e = g::softmax_empty();
  float sx = 1, sy = 1;
  const g::SoftmaxPartial ee = g::softmax_combine(e, e, &sx, &sy);
  CHECK(ee.l == 0.0f && sx == 0.0f && sy == 0.0f && ee.m == -INFINITY, "empty + empty");
  float acc[2] = {0, 0}, out[2] = {7, 7};
  g::softmax_finish(ee, acc, out, 2);
  CHECK(out[0] == 0.0f && out[1] == 0.0f, "empty finishes to 0");
  std::printf("online-softmax combine: any merge order equals the direct softmax (max |diff| %.2e); empty -> 0\n", worst);
}

int main() {
  test_key_sets();
  test_tiles();
  test_column_permutation();
  test_kv_cache();
  test_attention_numerics();
  test_online_softmax();
  std::printf("ok %ld checks\n", g_checks);
  return 0;
}
