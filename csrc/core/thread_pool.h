// A fixed pool of worker threads sized to the machine. parallel_for hands out task
// indices from an atomic counter; the calling thread works too. One parallel_for runs at
// a time (a mutex serialises callers), which is all the engine needs: a model runs one
// op at a time and parallelises inside it.
//
// Small ops never touch the pool: callers pass the op's cost (FLOPs, see
// kMinFlopsPerThread) and an op too small to pay for waking a second thread runs inline
// on the calling thread, without a lock, an atomic or a system call.
//
// Waking without a futex round trip per op: every worker has its own job counter on its
// own cache line. After a job a worker spins on that counter for a bounded time
// (spin_us(), with pause instructions) and only then sleeps on it (futex on Linux, a
// condition variable elsewhere); the caller bumps the counters of the workers it wants
// and makes a wake-up system call only for those actually asleep. The caller waits for
// the job the same way (bounded spin, then sleep). A worker that wakes late finds the
// job's gate closed and goes back to waiting, so a slow wake-up never holds the caller.
// Idle workers sleep: no core is burnt between jobs beyond the bounded spin.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace jb {

class ThreadPool {
 public:
  // Work (in FLOPs, or FLOP-equivalents: a GEMV of an M-row x over a K x N weight is
  // 2*M*K*N) that one extra thread must get for a split to pay. Handing work to a spinning
  // worker costs ~1 us (a few cache-line transfers); to a sleeping one the caller's futex
  // wake (~2-5 us on a VM) plus the worker's wake-up latency (~10-50 us on a VM, which the
  // gate keeps off the caller's critical path but which still burns the other core). One
  // core does ~20-40 GFLOP/s on our kernels (less for bandwidth-bound GEMV over weights
  // out of cache), so 1 MFLOP is ~25-50 us of single-thread work: below that per thread
  // the saving does not clearly beat the overhead. The default model's per-token decode
  // ops are all below 0.3 MFLOP (a 256 x 512 fp16 GEMV), so decoding runs on one thread;
  // prefill and the convolutions (tens of MFLOP and up) still use every core.
  static constexpr double kMinFlopsPerThread = 1.0e6;

  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Runs fn(task, worker) for task in [0, n) on every thread (up to n of them). worker is
  // in [0, size()) and identifies per-thread scratch. Exceptions from tasks are rethrown
  // (the first one) after all workers have stopped touching the job.
  void parallel_for(int n, const std::function<void(int task, int worker)>& fn);
  // The same for an op of about `flops` FLOPs in all: it uses threads_for(flops) threads,
  // one meaning inline on the calling thread (worker 0) with no pool traffic. Which
  // thread runs a task never changes a result: tasks write disjoint outputs and every
  // caller splits its arithmetic by shape, never by thread count.
  // A template so the inline path calls fn directly: wrapping a capturing lambda in a
  // std::function would heap-allocate on every call, i.e. several times per decoded token.
  template <class Fn>
  void parallel_for(int n, double flops, Fn&& fn) {
    if (n <= 0) return;
    const int threads = std::min(n, threads_for(flops));
    if (threads == 1) {
      // Inline: no lock (per-call scratch only; nothing here is shared with another
      // caller's job), no atomics, no system call, no allocation.
      for (int i = 0; i < n; ++i) fn(i, 0);
      return;
    }
    // std::ref: the std::function holds a reference (no allocation either).
    run(n, threads, std::function<void(int, int)>(std::ref(fn)));
  }
  // Threads an op of `flops` FLOPs is split over: [1, size()].
  int threads_for(double flops) const;
  int size() const { return int(workers_.size()) + 1; }
  // Bounded spin before sleeping, in microseconds (JUKEBOX_SPIN_US, default 50; 0 sleeps
  // at once). About what a sleep + wake round trip costs on a VM, so a worker never
  // spends more spinning than sleeping would have cost it (the classic 2-competitive
  // rule); prefill's back-to-back GEMMs find it awake, and an idle pool is asleep within
  // 50 us. Longer spins measured worse on a shared 2-core VM (they take the core from
  // whatever else runs there).
  int spin_us() const { return spin_us_; }

  // The process-wide pool: JUKEBOX_THREADS or the number of hardware threads.
  static ThreadPool& global();

 private:
  struct alignas(64) Worker {
    std::atomic<uint32_t> jobs{0};      // bumped by the caller for every job it hands this worker
    std::atomic<uint32_t> sleeping{0};  // 1 while parked in the kernel on `jobs`
    std::thread thread;
  };

  void run(int n, int threads, const std::function<void(int, int)>& fn);
  void worker_loop(int index);
  void run_tasks(int worker);

  int spin_us_ = 50;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::mutex call_mutex_;  // serialises parallel_for callers

  // The current job, written by the caller before it opens the gate.
  const std::function<void(int, int)>* job_ = nullptr;
  int job_n_ = 0;
  alignas(64) std::atomic<int> next_{0};
  // bit 31: the job is open to late-coming workers; low bits: workers inside the job.
  alignas(64) std::atomic<uint32_t> gate_{0};
  std::atomic<uint32_t> caller_sleeping_{0};
  std::atomic<bool> stop_{false};
  std::exception_ptr error_;
  std::mutex error_mutex_;
};

}  // namespace jb
