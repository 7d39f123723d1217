// Owning float buffer whose allocation failure becomes ERR_OUT_OF_MEMORY naming what did
// not fit, instead of std::bad_alloc terminating the process.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "error.h"

namespace jb {

template <class T>
class Buffer {
 public:
  Buffer() = default;
  Buffer(size_t n, const char* what) { reset(n, what); }

  void reset(size_t n, const char* what) {
    ptr_.reset();
    size_ = 0;
    if (n == 0) return;
    // 64-byte alignment: whole cache lines, aligned AVX loads.
    size_t bytes = ((n * sizeof(T) + 63) / 64) * 64;
    void* p = std::aligned_alloc(64, bytes);
    if (!p) {
      fail("ERR_OUT_OF_MEMORY", std::string("out of memory allocating ") +
                                    std::to_string(bytes >> 20) + " MiB for " + what);
    }
    ptr_.reset(static_cast<T*>(p));
    size_ = n;
  }
  void zero() {
    if (size_) std::memset(ptr_.get(), 0, size_ * sizeof(T));
  }

  T* data() { return ptr_.get(); }
  const T* data() const { return ptr_.get(); }
  size_t size() const { return size_; }
  T& operator[](size_t i) { return ptr_.get()[i]; }
  const T& operator[](size_t i) const { return ptr_.get()[i]; }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T, Free> ptr_;
  size_t size_ = 0;
};

}  // namespace jb
