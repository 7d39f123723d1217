// Implicit-GEMM conv1d / conv_transpose1d. See conv1d.h for the phase formulation.
//
// Work split: a task is (batch item, phase, block of kNC output columns). It packs the
// input columns it needs into NR-wide panels (im2col on the fly, ReLU fused), runs the
// micro-kernel over every MR-row weight panel, then applies the epilogue (bias, residual
// accumulate, strided store) while the tile is still in cache.
#include "conv1d.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "gemm_ukernel.h"

namespace jb {

namespace {

constexpr int kNC = 128;  // output columns per task: a multiple of kNR

int floor_div(int a, int b) { return (a >= 0) ? a / b : -((-a + b - 1) / b); }

// Packs an M x K weight matrix given by at(m, k) into MR-row panels (zero-padded rows).
template <class At>
void pack_weights(ConvPhase& ph, At at) {
  const int panels = (ph.M + kMR - 1) / kMR;
  ph.panels.reset(size_t(panels) * std::max(ph.K, 1) * kMR, "packed conv weights");
  ph.panels.zero();
  for (int pnl = 0; pnl < panels; ++pnl) {
    float* dst = ph.panels.data() + size_t(pnl) * ph.K * kMR;
    for (int k = 0; k < ph.K; ++k)
      for (int r = 0; r < kMR; ++r) {
        const int m = pnl * kMR + r;
        dst[size_t(k) * kMR + r] = m < ph.M ? at(m, k) : 0.0f;
      }
  }
}

// im2col for one NR-column panel: dst[(ci*ntaps + tap) * NR + j] = x[ci][col(j) + off[tap]].
void pack_input_panel(const ConvPhase& ph, const float* x, int cin, int tin, int j0, int ncols,
                      bool relu, float* dst) {
  for (int ci = 0; ci < cin; ++ci) {
    const float* xr = x + size_t(ci) * tin;
    for (int tap = 0; tap < ph.ntaps; ++tap, dst += kNR) {
      const int base = j0 * ph.in_stride + ph.tap_off[tap];
      const int last = base + (kNR - 1) * ph.in_stride;
      if (ph.in_stride == 1 && base >= 0 && last < tin && ncols == kNR) {
        if (relu) {
          for (int j = 0; j < kNR; ++j) dst[j] = std::max(xr[base + j], 0.0f);
        } else {
          std::memcpy(dst, xr + base, kNR * sizeof(float));
        }
        continue;
      }
      for (int j = 0; j < kNR; ++j) {
        const int s = base + j * ph.in_stride;
        float v = (j < ncols && s >= 0 && s < tin) ? xr[s] : 0.0f;
        dst[j] = relu ? std::max(v, 0.0f) : v;
      }
    }
  }
}

struct Scratch {
  Buffer<float> packed_input;
  Buffer<float> tile;
};

}  // namespace

int ConvParams::out_len(int tin) const {
  if (transposed) return (tin - 1) * stride - 2 * pad + dilation * (kernel - 1) + 1;
  return (tin + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
}

Conv1d::Conv1d(const ConvParams& p, const float* w, const float* bias) : p_(p) {
  require(p.cin > 0 && p.cout > 0 && p.kernel > 0 && p.stride > 0 && p.dilation > 0 && p.pad >= 0,
          "ERR_HPARAMS", "invalid conv parameters");
  bias_.reset(p.cout, "conv bias");
  for (int i = 0; i < p.cout; ++i) bias_[i] = bias ? bias[i] : 0.0f;

  if (!p.transposed) {
    ConvPhase ph;
    ph.ntaps = p.kernel;
    for (int k = 0; k < p.kernel; ++k) ph.tap_off.push_back(k * p.dilation - p.pad);
    ph.in_stride = p.stride;
    ph.M = p.cout;
    ph.K = p.cin * p.kernel;
    // PyTorch Conv1d weight (cout, cin, k) is already row m, column ci*k + tap.
    pack_weights(ph, [&](int m, int k) { return w[size_t(m) * ph.K + k]; });
    phases_.push_back(std::move(ph));
    return;
  }
  // Output t = q*stride + r receives x[s] through tap k when s*stride - pad + k*dil == t,
  // i.e. s = q + (r + pad - k*dil) / stride whenever that division is exact.
  for (int r = 0; r < p.stride; ++r) {
    ConvPhase ph;
    std::vector<int> taps;
    for (int k = 0; k < p.kernel; ++k) {
      const int num = r + p.pad - k * p.dilation;
      if (((num % p.stride) + p.stride) % p.stride != 0) continue;
      taps.push_back(k);
      ph.tap_off.push_back(floor_div(num, p.stride));
    }
    ph.ntaps = int(taps.size());
    ph.in_stride = 1;
    ph.out_stride = p.stride;
    ph.out_phase = r;
    ph.M = p.cout;
    ph.K = p.cin * ph.ntaps;
    // ConvTranspose1d weight is (cin, cout, k).
    pack_weights(ph, [&](int m, int kk) {
      const int ci = kk / ph.ntaps, tap = taps[kk % ph.ntaps];
      return w[(size_t(ci) * p.cout + m) * p.kernel + tap];
    });
    phases_.push_back(std::move(ph));
  }
}

double Conv1d::flops(int batch, int tin) const {
  const int tout = p_.out_len(tin);
  double f = 0;
  for (const auto& ph : phases_) {
    const int cols = std::max(0, (tout - ph.out_phase + ph.out_stride - 1) / ph.out_stride);
    f += 2.0 * ph.M * ph.K * double(cols) * batch;
  }
  return f;
}

void Conv1d::forward(ConstNCTView x, NCTView y, const ConvEpilogue& ep, ThreadPool& pool) const {
  require(x.c == p_.cin, "ERR_NATIVE",
          "conv input has " + std::to_string(x.c) + " channels, expected " + std::to_string(p_.cin));
  const int tout = p_.out_len(x.t);
  require(y.n == x.n && y.c == p_.cout && y.t == tout, "ERR_NATIVE", "conv output shape mismatch");
  if (tout <= 0 || x.n == 0) return;

  // Task list: (batch, phase, column block).
  struct Task { int b, phase, j0, ncols; };
  std::vector<Task> tasks;
  for (int b = 0; b < x.n; ++b)
    for (int pi = 0; pi < int(phases_.size()); ++pi) {
      const auto& ph = phases_[pi];
      const int cols = std::max(0, (tout - ph.out_phase + ph.out_stride - 1) / ph.out_stride);
      for (int j0 = 0; j0 < cols; j0 += kNC) tasks.push_back({b, pi, j0, std::min(kNC, cols - j0)});
    }

  std::vector<Scratch> scratch(pool.size());
  const UKernel ukernel = active_ukernel();
  pool.parallel_for(int(tasks.size()), [&](int ti, int worker) {
    const Task& task = tasks[ti];
    const ConvPhase& ph = phases_[task.phase];
    const int panels_n = (task.ncols + kNR - 1) / kNR;
    const int panels_m = (ph.M + kMR - 1) / kMR;
    const int ldt = panels_n * kNR;
    Scratch& s = scratch[worker];
    if (s.packed_input.size() < size_t(std::max(ph.K, 1)) * kNC)
      s.packed_input.reset(size_t(std::max(ph.K, 1)) * kNC, "conv input panels");
    if (s.tile.size() < size_t(panels_m) * kMR * kNC)
      s.tile.reset(size_t(panels_m) * kMR * kNC, "conv output tile");

    const float* xb = x.row(task.b, 0);
    for (int pn = 0; pn < panels_n; ++pn) {
      const int j0 = task.j0 + pn * kNR;
      pack_input_panel(ph, xb, p_.cin, x.t, j0, std::min(kNR, task.ncols - pn * kNR),
                       ep.relu_input, s.packed_input.data() + size_t(pn) * ph.K * kNR);
    }
    for (int pn = 0; pn < panels_n; ++pn) {
      const float* bp = s.packed_input.data() + size_t(pn) * ph.K * kNR;
      for (int pm = 0; pm < panels_m; ++pm)
        ukernel(ph.K, ph.panels.data() + size_t(pm) * ph.K * kMR, bp,
                s.tile.data() + size_t(pm) * kMR * ldt + pn * kNR, ldt, false);
    }
    // Epilogue: bias, residual, (strided) store.
    for (int m = 0; m < ph.M; ++m) {
      const float* tr = s.tile.data() + size_t(m) * ldt;
      float* yr = y.row(task.b, m);
      const float bias = bias_[m];
      const int first = task.j0 * ph.out_stride + ph.out_phase;
      if (ph.out_stride == 1) {
        float* dst = yr + first;
        if (ep.accumulate) {
          for (int j = 0; j < task.ncols; ++j) dst[j] += ep.scale * (tr[j] + bias);
        } else {
          for (int j = 0; j < task.ncols; ++j) dst[j] = tr[j] + bias;
        }
      } else {
        for (int j = 0; j < task.ncols; ++j) {
          float& dst = yr[first + j * ph.out_stride];
          dst = ep.accumulate ? dst + ep.scale * (tr[j] + bias) : tr[j] + bias;
        }
      }
    }
  });
}

}  // namespace jb
