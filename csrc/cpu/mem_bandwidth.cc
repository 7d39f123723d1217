// See mem_bandwidth.h. Every thread takes one contiguous share of the buffers (the
// pool's own split, with a cost large enough that every thread runs), which is how a
// decode step's bands stream the weights.
#include "mem_bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "../core/buffer.h"

namespace jb {

MemBandwidth measure_mem_bandwidth(ThreadPool& pool, double megabytes, int reps) {
  const size_t n = size_t(std::max(1.0, megabytes) * (1 << 20) / sizeof(float));
  Buffer<float> a, b;
  a.reset(n, "bandwidth buffer");
  b.reset(n, "bandwidth buffer");
  for (size_t i = 0; i < n; ++i) a[i] = float(i & 1023);  // pages in, and data that is not zero
  b.zero();
  const int threads = pool.size();
  const double all = 1e30;  // a cost that gives every thread a share
  std::vector<float> sums(size_t(threads) * 16, 0.0f);
  auto share = [&](int t, size_t& lo, size_t& hi) {
    lo = n * size_t(t) / size_t(threads);
    hi = n * size_t(t + 1) / size_t(threads);
  };
  using Clock = std::chrono::steady_clock;
  MemBandwidth r;
  r.threads = threads;
  r.megabytes = double(n) * sizeof(float) / (1 << 20);
  for (int rep = 0; rep < reps + 1; ++rep) {  // the first pass warms up (page tables, caches)
    auto t0 = Clock::now();
    pool.parallel_for(threads, all, [&](int t, int) {
      size_t lo, hi;
      share(t, lo, hi);
      std::memcpy(b.data() + lo, a.data() + lo, (hi - lo) * sizeof(float));
    });
    const double copy_s = std::chrono::duration<double>(Clock::now() - t0).count();
    t0 = Clock::now();
    pool.parallel_for(threads, all, [&](int t, int) {
      size_t lo, hi;
      share(t, lo, hi);
      // 16 independent sums (the compiler vectorises the inner loop): a read stream,
      // not an add-latency chain
      float s[16] = {0};
      const float* p = a.data();
      size_t i = lo;
      for (; i + 16 <= hi; i += 16)
        for (int j = 0; j < 16; ++j) s[j] += p[i + j];
      for (; i < hi; ++i) s[0] += p[i];
      for (int j = 0; j < 16; ++j) sums[size_t(t) * 16 + j] = s[j];
    });
    const double read_s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (rep == 0) continue;
    r.copy_gbs = std::max(r.copy_gbs, 2.0 * double(n) * sizeof(float) / copy_s / 1e9);
    r.read_gbs = std::max(r.read_gbs, double(n) * sizeof(float) / read_s / 1e9);
  }
  // (the sums are read so that the read loop is not optimised away)
  volatile float sink = 0;
  for (float v : sums) sink = sink + v;
  (void)sink;
  return r;
}

}  // namespace jb
