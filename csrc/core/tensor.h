// A small non-owning view of a contiguous float tensor in NCT layout (batch, channels,
// time), the layout every VQ-VAE op reads and writes.
#pragma once
#include <cstddef>

namespace jb {

struct NCTView {
  float* data = nullptr;
  int n = 0;  // batch
  int c = 0;  // channels
  int t = 0;  // time steps
  float* row(int b, int ch) const { return data + (size_t(b) * c + ch) * size_t(t); }
  size_t numel() const { return size_t(n) * c * t; }
};

struct ConstNCTView {
  const float* data = nullptr;
  int n = 0, c = 0, t = 0;
  ConstNCTView() = default;
  ConstNCTView(const float* d, int n_, int c_, int t_) : data(d), n(n_), c(c_), t(t_) {}
  ConstNCTView(const NCTView& v) : data(v.data), n(v.n), c(v.c), t(v.t) {}  // NOLINT
  const float* row(int b, int ch) const { return data + (size_t(b) * c + ch) * size_t(t); }
  size_t numel() const { return size_t(n) * c * t; }
};

}  // namespace jb
