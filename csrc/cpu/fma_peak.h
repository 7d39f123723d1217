// Measures the machine's floating-point peak in this process, so benchmarks can report
// achieved GFLOP/s as a fraction of it (a ratio that holds on a noisy machine). The peak
// is that of the widest FMA the active kernels use (512-bit with the AVX-512 kernels).
#pragma once
#include "../core/thread_pool.h"

namespace jb {

struct FmaPeak {
  double gflops_one_thread = 0;
  double gflops_all_threads = 0;
  int threads = 0;
  const char* isa = "";  // the peak loop's instructions: "avx512f", "avx2-fma" or "generic"
};

FmaPeak measure_fma_peak(ThreadPool& pool, double seconds_per_run = 0.2);

}  // namespace jb
