// Peak = independent FMA chains, enough of them to cover the FMA latency on every port,
// with no loads or stores. The result is the ceiling a compute-bound kernel can reach.
#include "fma_peak.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <vector>

#include "cpu_features.h"
#include "kernels_avx512.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace jb {

namespace {

#if defined(__x86_64__)
// 10 chains x 8 lanes x 2 flops per iteration. Every chain starts from a different value:
// chains that start equal compute equal values, and the compiler merged them into one
// (one FMA per iteration, latency-bound, counted as ten: the "peak" this loop reported
// before was a latency figure).
__attribute__((target("avx2,fma"), noinline)) float fma_loop_avx2(long iters, float seed) {
  const __m256 d = _mm256_set1_ps(1.0f / 1024);
  __m256 a0 = _mm256_set1_ps(seed), a1 = _mm256_add_ps(a0, d), a2 = _mm256_add_ps(a1, d),
         a3 = _mm256_add_ps(a2, d), a4 = _mm256_add_ps(a3, d), a5 = _mm256_add_ps(a4, d),
         a6 = _mm256_add_ps(a5, d), a7 = _mm256_add_ps(a6, d), a8 = _mm256_add_ps(a7, d),
         a9 = _mm256_add_ps(a8, d);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (long i = 0; i < iters; ++i) {
    a0 = _mm256_fmadd_ps(a0, m, c); a1 = _mm256_fmadd_ps(a1, m, c);
    a2 = _mm256_fmadd_ps(a2, m, c); a3 = _mm256_fmadd_ps(a3, m, c);
    a4 = _mm256_fmadd_ps(a4, m, c); a5 = _mm256_fmadd_ps(a5, m, c);
    a6 = _mm256_fmadd_ps(a6, m, c); a7 = _mm256_fmadd_ps(a7, m, c);
    a8 = _mm256_fmadd_ps(a8, m, c); a9 = _mm256_fmadd_ps(a9, m, c);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  s = _mm256_add_ps(s, _mm256_add_ps(a8, a9));
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  return out[0];
}
constexpr double kFlopsPerIterAvx2 = 10 * 8 * 2;
#endif

// Portable: 8 chains x 4-wide (what SSE2 vectorisation gives), mul+add.
__attribute__((noinline)) float fma_loop_generic(long iters, float seed) {
  float a[8][4];
  float start = seed;
  for (auto& r : a)
    for (float& v : r) v = (start += 1.0f / 1024);  // distinct chains (see fma_loop_avx2)
  for (long i = 0; i < iters; ++i)
    for (auto& r : a)
      for (float& v : r) v = v * 0.999999f + 1e-7f;
  float s = 0;
  for (auto& r : a)
    for (float v : r) s += v;
  return s;
}
constexpr double kFlopsPerIterGeneric = 8 * 4 * 2;

// The widest FMA the kernels use: the active ISA's.
double run(long iters, float seed) {
#if defined(__x86_64__)
  if (active_isa() == Isa::Avx512) return double(avx512_kernels()->fma_loop(iters, seed));
  if (active_isa() == Isa::Avx2Fma) return double(fma_loop_avx2(iters, seed));
#endif
  return double(fma_loop_generic(iters, seed));
}

double flops_per_iter() {
#if defined(__x86_64__)
  if (active_isa() == Isa::Avx512) return avx512_kernels()->fma_flops_per_iter;
  if (active_isa() == Isa::Avx2Fma) return kFlopsPerIterAvx2;
#endif
  return kFlopsPerIterGeneric;
}

// The instruction set the peak loop runs: 512-bit FMAs (AVX512F), 256-bit FMAs, or the
// portable loop.
const char* peak_isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512f";
    case Isa::Avx2Fma: return "avx2-fma";
    default: return "generic";
  }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

FmaPeak measure_fma_peak(ThreadPool& pool, double seconds_per_run) {
  FmaPeak r;
  r.isa = peak_isa_name(active_isa());
  r.threads = pool.size();
  std::atomic<double> sink{0};
  // Calibrate the iteration count to the requested duration on one thread.
  long iters = 1 << 16;
  for (;;) {
    auto t0 = std::chrono::steady_clock::now();
    sink = sink + run(iters, 1.0f);
    double s = seconds_since(t0);
    if (s > seconds_per_run / 4 || iters > (1L << 40)) {
      iters = long(double(iters) * seconds_per_run / std::max(s, 1e-9));
      break;
    }
    iters *= 4;
  }
  double best1 = 0, bestN = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    sink = sink + run(iters, 1.0f);
    best1 = std::max(best1, iters * flops_per_iter() / seconds_since(t0) / 1e9);
    t0 = std::chrono::steady_clock::now();
    pool.parallel_for(pool.size(), [&](int task, int) { sink = sink + run(iters, 1.0f + task); });
    bestN = std::max(bestN, double(pool.size()) * iters * flops_per_iter() / seconds_since(t0) / 1e9);
  }
  r.gflops_one_thread = best1;
  r.gflops_all_threads = bestN;
  return r;
}

}  // namespace jb
