// A fixed pool of worker threads sized to the machine. parallel_for hands out task
// indices from an atomic counter; the calling thread works too. One parallel_for runs at
// a time (a mutex serialises callers), which is all the engine needs: a model runs one
// op at a time and parallelises inside it.
#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace jb {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Runs fn(task, worker) for task in [0, n). worker is in [0, size()) and identifies
  // per-thread scratch. Exceptions from tasks are rethrown (the first one) after all
  // workers have stopped touching the job.
  void parallel_for(int n, const std::function<void(int task, int worker)>& fn);
  int size() const { return int(workers_.size()) + 1; }

  // The process-wide pool: JUKEBOX_THREADS or the number of hardware threads.
  static ThreadPool& global();

 private:
  void worker_loop(int index);
  void run_tasks(int worker);

  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // serialises parallel_for callers
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int, int)>* job_ = nullptr;
  int job_n_ = 0;
  std::atomic<int> next_{0};
  int active_ = 0;       // workers still inside the current job
  unsigned epoch_ = 0;   // bumps for every job so workers see each one once
  bool stop_ = false;
  std::exception_ptr error_;
  std::mutex error_mutex_;
};

}  // namespace jb
