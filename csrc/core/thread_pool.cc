#include "thread_pool.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <string>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace jb {

namespace {

constexpr uint32_t kOpen = 1u << 31;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Sleep while *word == expected (spurious returns allowed); wake up to `count` sleepers.
#if defined(__linux__)
void park(std::atomic<uint32_t>* word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}
void unpark(std::atomic<uint32_t>* word, int count) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0);
}
#else
// Portable fallback: one condition variable for every word. The waker changes the word
// before calling unpark, and unpark takes the mutex, so a sleeper that checked the word
// under the mutex cannot miss it.
std::mutex& park_mutex() {
  static std::mutex m;
  return m;
}
std::condition_variable& park_cv() {
  static std::condition_variable cv;
  return cv;
}
void park(std::atomic<uint32_t>* word, uint32_t expected) {
  std::unique_lock<std::mutex> lock(park_mutex());
  if (word->load() == expected) park_cv().wait(lock);
}
void unpark(std::atomic<uint32_t>*, int) {
  { std::lock_guard<std::mutex> lock(park_mutex()); }
  park_cv().notify_all();
}
#endif

// Spins (bounded by `us` microseconds) until done() holds; true if it did.
template <class Done>
bool spin_until(int us, Done done) {
  if (done()) return true;
  if (us <= 0) return false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  for (;;) {
    for (int i = 0; i < 32; ++i) {
      cpu_relax();
      if (done()) return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return done();
  }
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads < 1) threads = 1;
  threads = std::min(threads, int(kOpen - 1));
  if (const char* env = std::getenv("JUKEBOX_SPIN_US")) {
    const int v = std::atoi(env);
    if (v >= 0) spin_us_ = std::min(v, 100000);
  }
  for (int i = 1; i < threads; ++i) workers_.push_back(std::make_unique<Worker>());
  for (int i = 1; i < threads; ++i) workers_[i - 1]->thread = std::thread([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_seq_cst);
  for (auto& w : workers_) {
    w->jobs.fetch_add(1, std::memory_order_seq_cst);
    unpark(&w->jobs, INT_MAX);
  }
  for (auto& w : workers_) w->thread.join();
}

ThreadPool& ThreadPool::global() {
  static ThreadPool pool([] {
    if (const char* env = std::getenv("JUKEBOX_THREADS")) {
      int n = std::atoi(env);
      if (n > 0) return n;
    }
    unsigned hw = std::thread::hardware_concurrency();
    return hw ? int(hw) : 1;
  }());
  return pool;
}

int ThreadPool::threads_for(double flops) const {
  if (!(flops >= 2 * kMinFlopsPerThread)) return 1;  // also NaN
  const double t = flops / kMinFlopsPerThread;
  return t >= double(size()) ? size() : std::max(1, int(t));
}

void ThreadPool::run_tasks(int worker) {
  for (;;) {
    int task = next_.fetch_add(1, std::memory_order_relaxed);
    if (task >= job_n_) break;
    try {
      (*job_)(task, worker);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
      next_.store(job_n_, std::memory_order_relaxed);  // skip remaining tasks
    }
  }
}

void ThreadPool::worker_loop(int index) {
  Worker& me = *workers_[index - 1];
  uint32_t seen = 0;
  for (;;) {
    // Wait for the caller to bump our counter: spin, then sleep.
    auto bumped = [&] { return me.jobs.load(std::memory_order_acquire) != seen; };
    if (!spin_until(spin_us_, bumped)) {
      for (;;) {
        me.sleeping.store(1, std::memory_order_seq_cst);
        // Re-check after announcing the sleep: the caller bumps, then reads `sleeping`.
        const uint32_t now = me.jobs.load(std::memory_order_seq_cst);
        if (now != seen) break;
        park(&me.jobs, seen);
        if (me.jobs.load(std::memory_order_acquire) != seen) break;
      }
      me.sleeping.store(0, std::memory_order_relaxed);
    }
    seen = me.jobs.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_acquire)) return;
    // Enter through the gate, only while the job is open: a worker that wakes after the
    // caller finished the job (or a later one) never touches a job that is gone.
    uint32_t g = gate_.load(std::memory_order_acquire);
    bool entered = false;
    while (g & kOpen) {
      if (gate_.compare_exchange_weak(g, g + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
        entered = true;
        break;
      }
    }
    if (!entered) continue;
    run_tasks(index);
    const uint32_t prev = gate_.fetch_sub(1, std::memory_order_seq_cst);
    if (prev == 1 && caller_sleeping_.load(std::memory_order_seq_cst)) unpark(&gate_, 1);
  }
}

void ThreadPool::run(int n, int threads, const std::function<void(int, int)>& fn) {
  std::lock_guard<std::mutex> call_lock(call_mutex_);
  error_ = nullptr;
  job_ = &fn;
  job_n_ = n;
  next_.store(0, std::memory_order_relaxed);
  gate_.store(kOpen, std::memory_order_release);  // publishes job_, job_n_, next_
  for (int i = 0; i + 1 < threads; ++i) {
    Worker& w = *workers_[i];
    w.jobs.fetch_add(1, std::memory_order_seq_cst);
    if (w.sleeping.load(std::memory_order_seq_cst)) unpark(&w.jobs, 1);
  }
  run_tasks(0);
  // Close the gate, then wait for the workers inside to leave.
  uint32_t inside = gate_.fetch_and(~kOpen, std::memory_order_acq_rel) & ~kOpen;
  if (inside != 0 && !spin_until(spin_us_, [&] { return gate_.load(std::memory_order_acquire) == 0; })) {
    caller_sleeping_.store(1, std::memory_order_seq_cst);
    for (uint32_t g = gate_.load(std::memory_order_seq_cst); g != 0; g = gate_.load(std::memory_order_seq_cst))
      park(&gate_, g);
    caller_sleeping_.store(0, std::memory_order_relaxed);
  }
  // (The acquire loads of gate_ above order the workers' writes before this point.)
  job_ = nullptr;
  if (error_) {
    std::exception_ptr e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

void ThreadPool::parallel_for(int n, const std::function<void(int, int)>& fn) {
  if (n <= 0) return;
  const int threads = std::min(n, size());
  if (threads == 1) {
    std::lock_guard<std::mutex> call_lock(call_mutex_);
    for (int i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  run(n, threads, fn);
}

}  // namespace jb
