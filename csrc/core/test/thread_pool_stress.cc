// Stress test of the thread pool (csrc/core/thread_pool.*), built and run by
// test/thread-pool.test.ts, also under ThreadSanitizer where the compiler has it:
// many jobs of mixed sizes (inline, a few threads, all threads) with pauses that let the
// workers park; exceptions from pooled and inline tasks; several callers at once (pooled
// jobs serialise, inline ones run concurrently). Prints "ok" per round, "FAIL ..." and
// exit 1 on the first wrong answer.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <thread>
#include <vector>

#include "../thread_pool.h"

using jb::ThreadPool;

static int fail(const char* what, int it) {
  std::printf("FAIL %s (iteration %d)\n", what, it);
  return 1;
}

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 4;
  const int iters = argc > 2 ? std::atoi(argv[2]) : 20000;
  for (int round = 0; round < 3; ++round) {
    ThreadPool pool(threads);
    // 1. every task runs exactly once, whatever the job's size and the workers' state
    for (int it = 0; it < iters; ++it) {
      const int n = 1 + (it * 7919) % 37;
      std::vector<int> out(n, 0);
      std::atomic<int> calls{0};
      const double flops = it % 3 == 0 ? 1e3 : it % 3 == 1 ? 5e6 : 1e9;
      bool bad_worker = false;
      auto fn = [&](int t, int w) {
        if (w < 0 || w >= pool.size()) bad_worker = true;
        out[t] += t + 1;
        calls++;
      };
      if (it % 5 == 0) pool.parallel_for(n, fn); else pool.parallel_for(n, flops, fn);
      if (bad_worker) return fail("worker index out of range", it);
      for (int t = 0; t < n; ++t) if (out[t] != t + 1) return fail("a task ran other than once", it);
      if (calls != n) return fail("task count", it);
      if (it % 1000 == 0) std::this_thread::sleep_for(std::chrono::microseconds(300));  // let workers park
    }
    // 2. exceptions reach the caller, and the pool stays usable
    for (int it = 0; it < 200; ++it) {
      bool caught = false;
      try {
        pool.parallel_for(16, 1e9, [&](int t, int) { if (t == it % 16) throw std::runtime_error("pooled"); });
      } catch (const std::runtime_error&) { caught = true; }
      if (!caught) return fail("pooled exception lost", it);
      caught = false;
      try {
        pool.parallel_for(3, 1.0, [&](int t, int) { if (t == 2) throw std::runtime_error("inline"); });
      } catch (const std::runtime_error&) { caught = true; }
      if (!caught) return fail("inline exception lost", it);
    }
    // 3. concurrent callers
    std::vector<std::thread> callers;
    std::atomic<int> wrong{0};
    for (int c = 0; c < 3; ++c)
      callers.emplace_back([&, c] {
        for (int it = 0; it < iters / 4; ++it) {
          std::atomic<int> s{0};
          pool.parallel_for(8, (it + c) % 2 ? 1e9 : 1.0, [&](int t, int) { s += t; });
          if (s != 28) wrong++;
        }
      });
    for (auto& t : callers) t.join();
    if (wrong) return fail("concurrent callers", wrong);
    std::printf("ok round %d (threads %d, spin %d us)\n", round, pool.size(), pool.spin_us());
  }
  return 0;
}
