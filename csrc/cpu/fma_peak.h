// Measures the machine's floating-point peak in this process, so benchmarks can report
// achieved GFLOP/s as a fraction of it (a ratio that holds on a noisy machine).
#pragma once
#include "../core/thread_pool.h"

namespace jb {

struct FmaPeak {
  double gflops_one_thread = 0;
  double gflops_all_threads = 0;
  int threads = 0;
  const char* isa = "";
};

FmaPeak measure_fma_peak(ThreadPool& pool, double seconds_per_run = 0.2);

}  // namespace jb
