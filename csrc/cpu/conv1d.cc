// Implicit-GEMM conv1d / conv_transpose1d. See conv1d.h for the phase formulation.
//
// Work split: a task is (batch item, phase, block of kNC output columns). It packs the
// input columns it needs into NR-wide panels (im2col on the fly, ReLU fused), runs the
// micro-kernel over every MR-row weight panel, then applies the epilogue (bias, residual
// accumulate, strided store) while the tile is still in cache.
#include "conv1d.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "gemm_ukernel.h"

namespace jb {

namespace {

constexpr int kNC = kConvTileCols;  // a multiple of kNR
static_assert(kNC % kNR == 0, "tile width must be whole panels");
static_assert(kTileMR == kMR, "conv1d.h and gemm_ukernel.h disagree on MR");

int64_t floor_div64(int64_t a, int64_t b) { return (a >= 0) ? a / b : -((-a + b - 1) / b); }

// A tap offset is an input position shift: it must fit an int (|k*dil - pad| < 2^31).
int narrow_offset(int64_t v) {
  if (v < INT32_MIN || v > INT32_MAX) fail("ERR_INVALID_ARGUMENT", "convolution tap offset " + std::to_string(v) + " is out of range");
  return int(v);
}

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

// im2col for a block of ncols output columns, into NR-wide panels:
// panel pn, row (ci*ntaps + tap), lane j = x[ci][(j0 + pn*NR + j) * in_stride + off[tap]].
// The loops run along the input row (ci, tap) so each row is read as one sequential
// stream; going panel by panel instead touches ~K streams a cache line at a time and
// leaves the packing waiting on memory.
void pack_input(const ConvPhase& ph, const float* x, int cin, int tin, int j0, int ncols, bool relu,
                PackRow pack_row, float* panels) {
  const int npanels = (ncols + kNR - 1) / kNR;
  const size_t panel_stride = size_t(ph.K) * kNR;
  for (int ci = 0; ci < cin; ++ci) {
    const float* xr = x + size_t(ci) * tin;
    for (int tap = 0; tap < ph.ntaps; ++tap) {
      float* const row_dst = panels + size_t(ci * ph.ntaps + tap) * kNR;
      // 64-bit: a tap offset near 2^30 (huge dilations) plus col * stride overflows an int.
      auto base_of = [&](int pn) { return int64_t(j0 + pn * kNR) * ph.in_stride + ph.tap_off[tap]; };
      auto whole = [&](int pn) {  // a panel the vector copy can take: inside the row, all columns valid
        const int64_t base = base_of(pn);
        return ph.in_stride == 1 && base >= 0 && base + kNR <= tin && ncols - pn * kNR >= kNR;
      };
      for (int pn = 0; pn < npanels;) {
        float* dst = row_dst + size_t(pn) * panel_stride;
        if (whole(pn)) {  // the run of whole panels from here, in one call
          int end = pn + 1;
          while (end < npanels && whole(end)) ++end;
          pack_row(xr + base_of(pn), dst, long(panel_stride), end - pn, relu);
          pn = end;
          continue;
        }
        const int64_t base = base_of(pn);
        const int valid = std::min(kNR, ncols - pn * kNR);
        ++pn;
        for (int j = 0; j < kNR; ++j) {
          const int64_t s = base + int64_t(j) * ph.in_stride;
          const float v = (j < valid && s >= 0 && s < tin) ? xr[s] : 0.0f;
          dst[j] = (relu && v < 0.0f) ? 0.0f : v;
        }
      }
    }
  }
}

struct Scratch {
  Buffer<float> packed_input;
  Buffer<float> tile;
};

// The column tiles of one call: kNC-wide, except when there are few tiles per thread,
// then whole NR panels spread evenly over a multiple of the threads (120 columns on 2
// threads: 72 + 48 rather than 96 + 24, which left one thread most of the work). An
// output column's arithmetic does not depend on the tiling.
struct ColumnTiles {
  int cols = 0, count = 0, panels = 0;
  bool even = false;
  ColumnTiles(int cols_, int threads) : cols(cols_) {
    count = (cols + kNC - 1) / kNC;
    if (threads > 1 && count < 4 * threads) {
      panels = (cols + kNR - 1) / kNR;  // >= count, and <= 4 * count: a tile stays <= kNC
      count = std::min(panels, (count + threads - 1) / threads * threads);
      even = true;
    }
  }
  int begin(int i) const { return even ? int(int64_t(panels) * i / count) * kNR : i * kNC; }
  int end(int i) const { return std::min(cols, even ? int(int64_t(panels) * (i + 1) / count) * kNR : (i + 1) * kNC); }
};

}  // namespace

int ConvParams::out_len(int tin) const {
  // In 64 bits: 2 * pad and dilation * (kernel - 1) overflow an int for dilations near 2^30
  // (undefined behaviour that happened to give the right answer). A length that does not fit
  // an int is refused rather than wrapped.
  const int64_t span = int64_t(dilation) * (kernel - 1);
  const int64_t len = transposed ? (int64_t(tin) - 1) * stride - 2 * int64_t(pad) + span + 1
                                 : floor_div64(int64_t(tin) + 2 * int64_t(pad) - span - 1, stride) + 1;
  // (the message is built only on failure: out_len runs per layer per call)
  if (len < 0 || len > INT32_MAX) {
    fail("ERR_INVALID_ARGUMENT", "convolution output length " + std::to_string(len) + " for an input of " + std::to_string(tin) + " is out of range");
  }
  return int(len);
}

Conv1d::Conv1d(const ConvParams& p, const float* w, const float* bias) : p_(p) {
  require(p.cin > 0 && p.cout > 0 && p.kernel > 0 && p.stride > 0 && p.dilation > 0 && p.pad >= 0,
          "ERR_HPARAMS", "invalid conv parameters");
  bias_.reset(p.cout, "conv bias");
  for (int i = 0; i < p.cout; ++i) bias_[i] = bias ? bias[i] : 0.0f;

  if (!p.transposed) {
    ConvPhase ph;
    ph.ntaps = p.kernel;
    for (int k = 0; k < p.kernel; ++k) ph.tap_off.push_back(narrow_offset(int64_t(k) * p.dilation - p.pad));
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
      const int64_t num = int64_t(r) + p.pad - int64_t(k) * p.dilation;
      if (((num % p.stride) + p.stride) % p.stride != 0) continue;
      taps.push_back(k);
      ph.tap_off.push_back(narrow_offset(floor_div64(num, p.stride)));
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

int Conv1d::max_k() const {
  int k = 1;
  for (const auto& ph : phases_) k = std::max(k, ph.K);
  return k;
}

const float* Conv1d::weight_panel(int phase, int panel) const {
  const ConvPhase& ph = phases_[phase];
  return ph.panels.data() + size_t(panel) * ph.K * kMR;
}

int Conv1d::phase_cols(int phase, int tout) const {
  const ConvPhase& ph = phases_[phase];
  return std::max(0, (tout - ph.out_phase + ph.out_stride - 1) / ph.out_stride);
}

void Conv1d::gemm_tile(int phase, const float* xb, int tin, int q0, int cols, bool relu_input,
                       float* packed, float* tile) const {
  const ConvPhase& ph = phases_[phase];
  pack_input(ph, xb, p_.cin, tin, q0, cols, relu_input, active_pack_row(), packed);
  const int panels_n = (cols + kNR - 1) / kNR;
  const int panels_m = (ph.M + kMR - 1) / kMR;
  active_tile_gemm()(ph.K, ph.panels.data(), panels_m, packed, panels_n, tile, kNC);
}

void Conv1d::forward(ConstNCTView x, NCTView y, const ConvEpilogue& ep, ThreadPool& pool) const {
  require(x.c == p_.cin, "ERR_NATIVE",
          "conv input has " + std::to_string(x.c) + " channels, expected " + std::to_string(p_.cin));
  const int tout = p_.out_len(x.t);
  require(y.n == x.n && y.c == p_.cout && y.t == tout, "ERR_NATIVE", "conv output shape mismatch");
  if (tout <= 0 || x.n == 0) return;

  // A task is (batch item, block of kNC columns q) for ALL phases: output t = q*s + r for
  // every phase r, so each output cache line is written once, in order, by one task.
  const int nphase = int(phases_.size());
  const int s_out = phases_[0].out_stride;
  const double work = flops(x.n, x.t);
  const ColumnTiles tiles(phase_cols(0, tout), pool.threads_for(work));  // phase 0 is the longest
  const int blocks = tiles.count;
  const size_t tile_floats = size_t(tile_rows()) * kNC;

  std::vector<Scratch> scratch(pool.size());
  pool.parallel_for(x.n * blocks, work, [&](int ti, int worker) {
    const int b = ti / blocks;
    const int q0 = tiles.begin(ti % blocks), q1 = tiles.end(ti % blocks);
    Scratch& sc = scratch[worker];
    if (sc.packed_input.size() == 0) {
      sc.packed_input.reset(size_t(max_k()) * kNC, "conv input panels");
      sc.tile.reset(nphase * tile_floats, "conv output tile");
    }
    for (int pi = 0; pi < nphase; ++pi) {
      const int cols = std::min(q1, phase_cols(pi, tout)) - q0;
      if (cols > 0)
        gemm_tile(pi, x.row(b, 0), x.t, q0, cols, ep.relu_input, sc.packed_input.data(),
                  sc.tile.data() + pi * tile_floats);
    }
    // Epilogue: bias, residual, interleave the phases into the output row.
    const int t0 = q0 * s_out;
    const int t1 = std::min(tout, q1 * s_out);
    for (int m = 0; m < p_.cout; ++m) {
      float* yr = y.row(b, m);
      const float bias = bias_[m];
      const float* tr = sc.tile.data() + size_t(m) * kNC;
      if (nphase == 1) {
        float* dst = yr + t0;
        const int n = t1 - t0;
        if (ep.accumulate) {
          for (int j = 0; j < n; ++j) dst[j] += ep.scale * (tr[j] + bias);
        } else {
          for (int j = 0; j < n; ++j) dst[j] = tr[j] + bias;
        }
        continue;
      }
      if (s_out == 2 && t1 - t0 == 2 * (q1 - q0)) {
        // Stride 2 (every transposed conv of the VQ-VAE), whole pairs: the two phases
        // interleaved by a loop the compiler vectorises (the general loop below, one
        // element at a time with a branch, took a fifth of a level-1 decode).
        const float* p0 = tr;
        const float* p1 = tr + tile_floats;
        float* dst = yr + t0;
        const int nq = q1 - q0;
        if (ep.accumulate) {
          for (int q = 0; q < nq; ++q) {
            dst[2 * q] += ep.scale * (p0[q] + bias);
            dst[2 * q + 1] += ep.scale * (p1[q] + bias);
          }
        } else {
          for (int q = 0; q < nq; ++q) {
            dst[2 * q] = p0[q] + bias;
            dst[2 * q + 1] = p1[q] + bias;
          }
        }
        continue;
      }
      // t = (q0 + q) * s_out + r, and phases_[r].out_phase == r by construction.
      for (int q = 0, t = t0; t < t1; ++q) {
        for (int r = 0; r < s_out && t < t1; ++r, ++t) {
          const float v = tr[r * tile_floats + q] + bias;
          yr[t] = ep.accumulate ? yr[t] + ep.scale * v : v;
        }
      }
    }
  });
}

bool can_fuse_resblock(const Conv1d& a, const Conv1d& b, int tin) {
  const ConvParams& pa = a.params();
  const ConvParams& pb = b.params();
  return !pa.transposed && pa.stride == 1 && pa.out_len(tin) == tin && !pb.transposed &&
         pb.kernel == 1 && pb.stride == 1 && pb.pad == 0 && pb.cin == pa.cout && pb.cout == pa.cin;
}

void resblock_forward(const Conv1d& a, const Conv1d& b, float scale, ConstNCTView x, NCTView y,
                      ThreadPool& pool) {
  require(can_fuse_resblock(a, b, x.t) && x.c == a.params().cin && y.n == x.n && y.c == x.c &&
              y.t == x.t && y.data != x.data,
          "ERR_NATIVE", "resblock_forward: incompatible convs or shapes");
  const int cmid = a.params().cout;
  const double work = a.flops(x.n, x.t) + b.flops(x.n, x.t);
  const ColumnTiles tiles(x.t, pool.threads_for(work));
  const int blocks = tiles.count;
  struct ResScratch {
    Buffer<float> packed, hidden, out;
  };
  std::vector<ResScratch> scratch(pool.size());
  const PackRow pack_row = active_pack_row();
  const TileGemm tile_gemm = active_tile_gemm();
  pool.parallel_for(x.n * blocks, work, [&](int ti, int worker) {
    const int bi = ti / blocks;
    const int q0 = tiles.begin(ti % blocks);
    const int cols = tiles.end(ti % blocks) - q0;
    ResScratch& sc = scratch[worker];
    if (sc.packed.size() == 0) {
      sc.packed.reset(size_t(std::max(a.max_k(), cmid)) * kNC, "resblock panels");
      sc.hidden.reset(size_t(a.tile_rows()) * kNC, "resblock hidden tile");
      sc.out.reset(size_t(b.tile_rows()) * kNC, "resblock output tile");
    }
    // h = a(relu(x)) for this column block, left in cache.
    a.gemm_tile(0, x.row(bi, 0), x.t, q0, cols, true, sc.packed.data(), sc.hidden.data());
    // Pack relu(h + bias_a) straight into b's input panels (b is 1-wide: rows are channels).
    const int panels_n = (cols + kNR - 1) / kNR;
    const float* bias_a = a.bias();
    for (int ci = 0; ci < cmid; ++ci) {
      const float* hr = sc.hidden.data() + size_t(ci) * kNC;
      float row[kNC];
      for (int j = 0; j < panels_n * kNR; ++j) row[j] = hr[j] + bias_a[ci];
      pack_row(row, sc.packed.data() + size_t(ci) * kNR, long(cmid) * kNR, panels_n, true);
    }
    // out = b(...) and y = x + scale * (out + bias_b).
    tile_gemm(cmid, b.weight_panel(0, 0), b.tile_rows() / kMR, sc.packed.data(), panels_n, sc.out.data(), kNC);
    const float* bias_b = b.bias();
    for (int m = 0; m < x.c; ++m) {
      const float* xr = x.row(bi, m) + q0;
      float* yr = y.row(bi, m) + q0;
      const float* orow = sc.out.data() + size_t(m) * kNC;
      for (int j = 0; j < cols; ++j) yr[j] = xr[j] + scale * (orow[j] + bias_b[m]);
    }
  });
}

}  // namespace jb
