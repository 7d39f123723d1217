// Measures the memory bandwidth this process gets with all the pool's threads, so the
// decode benchmarks can report the bytes a step streams as a share of what the machine
// can move (a ratio that holds on a noisy machine). A single JavaScript thread copying an
// ArrayBuffer (what the benchmarks measured before) reaches only part of a multi-core
// machine's bandwidth, which flattered every share measured against it.
#pragma once
#include "../core/thread_pool.h"

namespace jb {

struct MemBandwidth {
  double copy_gbs = 0;  // memcpy between two buffers: bytes read + bytes written per second
  double read_gbs = 0;  // a streaming read (sum of floats): bytes read per second
  int threads = 0;
  double megabytes = 0;  // size of each buffer
};

// Best of `reps` passes over buffers of `megabytes` MB each (far larger than any cache).
MemBandwidth measure_mem_bandwidth(ThreadPool& pool, double megabytes = 256, int reps = 5);

}  // namespace jb
