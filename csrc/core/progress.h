// How long native work reports progress and learns it should stop. The N-API layer fills
// this in; the model code only calls step() between ops.
#pragma once
#include <atomic>
#include <functional>

#include "error.h"

namespace jb {

struct Progress {
  std::function<void(double done, double total)> report;  // may be empty
  const std::atomic<bool>* cancelled = nullptr;
  double total = 0, done = 0;

  void check() const {
    if (cancelled && cancelled->load(std::memory_order_relaxed)) fail("ERR_ABORTED", "aborted");
  }
  void step(double amount) {
    done += amount;
    if (report) report(done, total);
    check();
  }
};

}  // namespace jb
