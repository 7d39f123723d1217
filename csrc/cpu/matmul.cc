// Blocked GEMM over the shared micro-kernel. A task owns a block of output columns: it
// packs that block of W once (widening fp16/bf16) and sweeps all rows of x through it, so
// each weight is read from memory once per call however many rows there are.
#include "matmul.h"

#include <algorithm>
#include <cstring>
#include <vector>
#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "../core/buffer.h"
#include "../core/error.h"
#include "../core/half.h"
#include "cpu_features.h"
#include "gemm_ukernel.h"
#include "gemv.h"
#include "kernels_avx512.h"

namespace jb {

// fp16 -> fp32 widening for the active ISA (exact in every version), or null: scalar.
using WidenF16 = void (*)(const uint16_t* src, float* dst, int n);
static WidenF16 active_widen_f16() {
  switch (active_isa()) {
    case Isa::Avx512: return avx512_kernels()->widen_f16;
    case Isa::Avx2Fma: return widen_f16_avx2;
    default: return nullptr;
  }
}

// The int8 kernels of the active ISA (gemv.h).
using KrangeI8 = void (*)(const float* x, int M, int ldx, const int8_t* w, int N, int k0, int k1, int j0, int nc,
                          float* acc, int ldacc);
using DotsI8 = void (*)(const float* x, int M, int ldx, const int8_t* w, int K, int j0, int nc, float* acc, int ldacc);
using DequantI8 = void (*)(const int8_t* q, const float* scales, float* dst, int n);
static KrangeI8 active_krange_i8() {
  switch (active_isa()) {
    case Isa::Avx512: return avx512_kernels()->gemv_krange_i8;
    case Isa::Avx2Fma: return gemv_krange_i8_avx2;
    default: return gemv_krange_i8_generic;
  }
}
static DotsI8 active_dots_i8() {
  switch (active_isa()) {
    case Isa::Avx512: return avx512_kernels()->dots_i8;
    case Isa::Avx2Fma: return dots_i8_avx2;
    default: return dots_i8_generic;
  }
}
static DequantI8 active_dequant_i8() {
  switch (active_isa()) {
    case Isa::Avx512: return avx512_kernels()->dequant_i8;
    case Isa::Avx2Fma: return dequant_i8_avx2;
    default: return dequant_i8_generic;
  }
}

// dst[i] = bf16 src[i] as fp32 (exact; a loop the compiler vectorises).
static void widen_bf16(const uint16_t* src, float* dst, int n) {
  for (int i = 0; i < n; ++i) dst[i] = bf16_to_float(src[i]);
}

float WeightView::at(int row, int col) const {
  const size_t i = transposed ? size_t(col) * k + row : size_t(row) * n + col;
  switch (dtype) {
    case DType::F32: return static_cast<const float*>(data)[i];
    case DType::F16: return half_to_float(static_cast<const uint16_t*>(data)[i]);
    case DType::BF16: return bf16_to_float(static_cast<const uint16_t*>(data)[i]);
    case DType::I8: {
      // the stored (row, column) of logical W[row][col], and the scale of its stored axis
      const int srow = transposed ? col : row, scol = transposed ? row : col;
      return float(static_cast<const int8_t*>(data)[i]) * scales[scale_rows ? srow : scol];
    }
  }
  return 0.0f;
}

// An int8 view must carry its scales, one per output channel: the stored rows when stored
// (N, K), the stored columns when stored (K, N). WeightStore builds only such views; this
// guards every other way in (tests, future callers) before a kernel reads past the scales.
static void check_view(const WeightView& w) {
  if (w.dtype != DType::I8) return;
  require(w.scales != nullptr, "ERR_DTYPE", "int8 weights without their scales");
  require(w.scale_rows == w.transposed, "ERR_DTYPE",
          std::string("int8 weights stored ") + (w.transposed ? "(N, K)" : "(K, N)") + " with scales per stored " +
              (w.scale_rows ? "row" : "column") + ": the scales must run along the output channels");
}

void WeightView::row_f32(int r, float* out) const {
  const int len = stored_cols();
  const size_t base = size_t(r) * len;
  switch (dtype) {
    case DType::F32:
      std::memcpy(out, static_cast<const float*>(data) + base, sizeof(float) * len);
      return;
    case DType::F16:
      // (embedding rows: once per decoded token; F16C widening is exact like half_to_float)
      if (const WidenF16 widen = active_widen_f16()) {
        widen(static_cast<const uint16_t*>(data) + base, out, len);
        return;
      }
      for (int j = 0; j < len; ++j) out[j] = half_to_float(static_cast<const uint16_t*>(data)[base + j]);
      return;
    case DType::BF16:
      widen_bf16(static_cast<const uint16_t*>(data) + base, out, len);
      return;
    case DType::I8: {
      const int8_t* q = static_cast<const int8_t*>(data) + base;
      if (scale_rows) {
        for (int j = 0; j < len; ++j) out[j] = float(q[j]) * scales[r];
      } else {
        active_dequant_i8()(q, scales, out, len);
      }
      return;
    }
  }
}

void matmul_ref(const float* x, int M, int ldx, const WeightView& w, const float* bias, float* y,
                int ldy, bool accumulate) {
  check_view(w);
  for (int m = 0; m < M; ++m)
    for (int j = 0; j < w.n; ++j) {
      double acc = bias ? bias[j] : 0.0;
      for (int kk = 0; kk < w.k; ++kk) acc += double(x[size_t(m) * ldx + kk]) * w.at(kk, j);
      float& out = y[size_t(m) * ldy + j];
      out = accumulate ? out + float(acc) : float(acc);
    }
}

constexpr int kSmallRows = 16;  // at most this many rows go through matmul_few_rows

// The few-row kernels that stream W stored (K, N) in place (gemv.h's krange; their walk,
// krange_walk.h, sweeps every block of W with all the rows, so W is read once for a
// batch of up to 16). Others read W in place for up to 8 rows.
static bool streams_in_place(const WeightView& w) {
  return !w.transposed && (w.dtype == DType::I8 || isa_at_least(Isa::Avx2Fma));
}

// Rows up to which matmul reads W in place rather than packing it for the GEMM: batched
// decoding (4-16 samples) is still bound by reading W, and packing costs a pass over it in
// fp32 per call (for (N, K) weights such as x_out, element by element: 14 ms a call for
// 1b_lyrics' x_out at batch 9-16, 12% of a batch-16 step, where the dot kernels take about
// 1 ms). The same on AVX2 and AVX-512, so that both give the same bits for (K, N) weights
// (the (N, K) dot kernels already sum in a different order per ISA); the portable path
// keeps the GEMM past 8 rows for fp32 / fp16 / bf16 (K, N), where its micro-kernel is faster.
static int few_rows_limit(const WeightView& w) {
  const bool in_place = streams_in_place(w) || w.dtype == DType::I8 || (w.transposed && isa_at_least(Isa::Avx2Fma));
  return in_place ? kSmallRows : 8;
}

namespace {

constexpr int kColsPerTask = 4 * kNR;

// dst[kk * NR + j] = W[kk][n0 + j], zero past the last column.
void pack_weight_panel(const WeightView& w, int n0, float* dst) {
  const int cols = std::min(kNR, w.n - n0);
  if (!w.transposed && w.dtype == DType::F32 && cols == kNR) {
    const float* src = static_cast<const float*>(w.data) + n0;
    for (int kk = 0; kk < w.k; ++kk) std::memcpy(dst + size_t(kk) * kNR, src + size_t(kk) * w.n, sizeof(float) * kNR);
    return;
  }
  // fp16 (K, N): widened a row segment at a time (exact either way; element by element
  // through at() this packing cost about half as much as the product at prefill sizes).
  if (!w.transposed && w.dtype == DType::F16 && cols == kNR) {
    const uint16_t* src = static_cast<const uint16_t*>(w.data) + n0;
    if (const WidenF16 widen = active_widen_f16()) {
      for (int kk = 0; kk < w.k; ++kk) widen(src + size_t(kk) * w.n, dst + size_t(kk) * kNR, kNR);
    } else {
      for (int kk = 0; kk < w.k; ++kk)
        for (int j = 0; j < kNR; ++j) dst[size_t(kk) * kNR + j] = half_to_float(src[size_t(kk) * w.n + j]);
    }
    return;
  }
  // bf16 (K, N): widened a row segment at a time (bits << 16: exact, a loop the compiler
  // vectorises), the values the few-row kernels widen in registers.
  if (!w.transposed && w.dtype == DType::BF16 && cols == kNR) {
    const uint16_t* src = static_cast<const uint16_t*>(w.data) + n0;
    for (int kk = 0; kk < w.k; ++kk) widen_bf16(src + size_t(kk) * w.n, dst + size_t(kk) * kNR, kNR);
    return;
  }
  // int8 (K, N): dequantised a row segment at a time (q * scale, the value at() gives), so
  // the GEMM runs on the same fp32 weights as matmul_ref and only this panel is ever fp32.
  if (!w.transposed && w.dtype == DType::I8 && cols == kNR) {
    const int8_t* src = static_cast<const int8_t*>(w.data) + n0;
    const DequantI8 dequant = active_dequant_i8();
    for (int kk = 0; kk < w.k; ++kk) dequant(src + size_t(kk) * w.n, w.scales + n0, dst + size_t(kk) * kNR, kNR);
    return;
  }
  for (int kk = 0; kk < w.k; ++kk)
    for (int j = 0; j < kNR; ++j) dst[size_t(kk) * kNR + j] = j < cols ? w.at(kk, n0 + j) : 0.0f;
}

// dst[kk * MR + r] = x[m0 + r][kk], zero past the last row.
void pack_rows(const float* x, int ldx, int K, int m0, int rows, float* dst) {
#if defined(__SSE2__)
  static_assert(kMR == 4, "the SSE transpose packs 4 rows");
  if (rows == kMR) {
    // 4 x 4 blocks transposed in registers (a plain copy: the values are unchanged); the
    // scalar loop's 4-byte strided stores cost a sixth of the GEMM at prefill sizes.
    const float* r0 = x + size_t(m0) * ldx;
    const float* r1 = r0 + ldx;
    const float* r2 = r1 + ldx;
    const float* r3 = r2 + ldx;
    int kk = 0;
    for (; kk + 4 <= K; kk += 4) {
      __m128 a = _mm_loadu_ps(r0 + kk), b = _mm_loadu_ps(r1 + kk), c = _mm_loadu_ps(r2 + kk), d = _mm_loadu_ps(r3 + kk);
      _MM_TRANSPOSE4_PS(a, b, c, d);
      float* o = dst + size_t(kk) * kMR;
      _mm_storeu_ps(o, a);
      _mm_storeu_ps(o + 4, b);
      _mm_storeu_ps(o + 8, c);
      _mm_storeu_ps(o + 12, d);
    }
    for (; kk < K; ++kk) {
      float* o = dst + size_t(kk) * kMR;
      o[0] = r0[kk];
      o[1] = r1[kk];
      o[2] = r2[kk];
      o[3] = r3[kk];
    }
    return;
  }
#endif
  for (int r = 0; r < kMR; ++r) {
    if (r < rows) {
      const float* src = x + size_t(m0 + r) * ldx;
      for (int kk = 0; kk < K; ++kk) dst[size_t(kk) * kMR + r] = src[kk];
    } else {
      for (int kk = 0; kk < K; ++kk) dst[size_t(kk) * kMR + r] = 0.0f;
    }
  }
}

}  // namespace

// Few rows (token-by-token decoding): packing W would cost as much as the product, so read
// it in place.
// Few rows, W stored (K, N): each task streams a contiguous band of W's rows (all
// columns, or a wide block of them), then the partial sums of the bands are added.
// Column blocks alone would make every thread read W in short strided pieces, which the
// prefetchers serve far worse.
//
// The number of bands is fixed by W's shape, never by the thread count nor by the number
// of rows, so the order of the additions (and the result) is the same with 1 thread or
// 64, and a sample's row in a batch of up to 16 gets the bits it gets alone. Threads
// beyond the bands split the columns (which does not change any output's arithmetic). A
// matrix too small to split at one row (ThreadPool::kMinFlopsPerThread) is one band.
static void matmul_few_rows_streaming(const float* x, int M, int ldx, const WeightView& w, const float* bias,
                                      float* y, int ldy, bool accumulate, ThreadPool& pool) {
  const int K = w.k, N = w.n;
  const double flops = 2.0 * M * K * N, flops_one_row = 2.0 * K * N;
  constexpr int kMaxBands = 8;  // partial sums cost M*N*4 bytes per band; keep that small next to W
  const int parts =
      int(std::max(1.0, std::min({double(kMaxBands), double(K / 16), flops_one_row / ThreadPool::kMinFlopsPerThread})));
  const int threads = pool.threads_for(flops);
  // Column blocks: whole 16-column vectors, so each output's arithmetic is unchanged.
  const int cblocks = std::max(1, std::min((threads + parts - 1) / parts, (N + 15) / 16));
  const int cwidth = ((N + cblocks - 1) / cblocks + 15) / 16 * 16;
  const int ncb = (N + cwidth - 1) / cwidth;
  const bool f16 = w.dtype == DType::F16, bf16 = w.dtype == DType::BF16;
  // int8: the bands sum x * q unscaled; each output is multiplied by its column's scale
  // once, after the bands are added (gemv.h).
  const bool i8 = w.dtype == DType::I8;
  const float* cscale = i8 ? w.scales : nullptr;
  // The AVX-512 and AVX2 kernels give the same bits (gemv_avx512.cc, gemv_i8_avx512.cc).
  const auto krange = active_isa() == Isa::Avx512 ? avx512_kernels()->gemv_krange : gemv_krange_avx2;
  const KrangeI8 krange_i8 = i8 ? active_krange_i8() : nullptr;
  const auto krange_bf16 = active_isa() == Isa::Avx512 ? avx512_kernels()->gemv_krange_bf16 : gemv_krange_bf16_avx2;
  auto band = [&](int task, float* acc, int ldacc) {
    const int p = task / ncb, cb = task % ncb;
    const int k0 = int(int64_t(K) * p / parts), k1 = int(int64_t(K) * (p + 1) / parts);
    const int j0 = cb * cwidth, nc = std::min(N, j0 + cwidth) - j0;
    float* a = acc + size_t(p) * M * ldacc + j0;
    if (i8) {
      krange_i8(x, M, ldx, static_cast<const int8_t*>(w.data), N, k0, k1, j0, nc, a, ldacc);
    } else if (bf16) {
      krange_bf16(x, M, ldx, static_cast<const uint16_t*>(w.data), N, k0, k1, j0, nc, a, ldacc);
    } else {
      krange(x, M, ldx, w.data, f16, N, k0, k1, j0, nc, a, ldacc);
    }
  };
  const uintptr_t xa = uintptr_t(x), ya = uintptr_t(y);
  const bool overlap = ya < xa + sizeof(float) * size_t(M) * ldx && xa < ya + sizeof(float) * size_t(M) * ldy;
  if (parts == 1 && !accumulate && !overlap) {
    // One band straight into y, then y = (0 + band) + bias as the general case computes it.
    pool.parallel_for(ncb, flops, [&](int task, int) { band(task, y, ldy); });
    for (int m = 0; m < M; ++m) {
      float* yr = y + size_t(m) * ldy;
      if (cscale) {
        for (int j = 0; j < N; ++j) yr[j] = yr[j] * cscale[j] + (bias ? bias[j] : 0.0f);
      } else if (bias) {
        for (int j = 0; j < N; ++j) yr[j] = (0.0f + yr[j]) + bias[j];
      } else {
        for (int j = 0; j < N; ++j) yr[j] = (0.0f + yr[j]) + 0.0f;
      }
    }
    return;
  }
  // Reused per calling thread: a decode step calls this a few times per layer.
  thread_local std::vector<float> partial;
  if (partial.size() < size_t(parts) * M * N) partial.resize(size_t(parts) * M * N);
  float* part = partial.data();
  pool.parallel_for(parts * ncb, flops, [&](int task, int) { band(task, part, N); });
  // The bands' sums, added in band order for every output (so the same bits however the
  // columns are split), on the pool in column blocks: at batch 16 they are parts x 16 x N
  // floats (1 MB for a 2048-wide matrix, an eighth of its fp16 weight bytes), which one
  // thread alone would sum while the other waits.
  constexpr int kSumCols = 256;
  const int sblocks = (N + kSumCols - 1) / kSumCols;
  pool.parallel_for(sblocks, double(parts) * M * N * 8, [&](int task, int) {
    const int c0 = task * kSumCols, c1 = std::min(N, c0 + kSumCols), nc = c1 - c0;
    float v[kSumCols];
    for (int m = 0; m < M; ++m) {
      for (int j = 0; j < nc; ++j) v[j] = 0.0f;
      for (int p = 0; p < parts; ++p) {
        const float* pr = part + (size_t(p) * M + m) * N + c0;
        for (int j = 0; j < nc; ++j) v[j] += pr[j];
      }
      if (cscale)
        for (int j = 0; j < nc; ++j) v[j] *= cscale[c0 + j];
      for (int j = 0; j < nc; ++j) v[j] += bias ? bias[c0 + j] : 0.0f;
      float* yr = y + size_t(m) * ldy + c0;
      if (accumulate) {
        for (int j = 0; j < nc; ++j) yr[j] += v[j];
      } else {
        for (int j = 0; j < nc; ++j) yr[j] = v[j];
      }
    }
  });
}

static void matmul_few_rows(const float* x, int M, int ldx, const WeightView& w, const float* bias,
                            float* y, int ldy, bool accumulate, ThreadPool& pool) {
  // (K, N) streams on AVX2 and AVX-512, int8 (K, N) on every ISA (the portable int8 band
  // kernel too); here: (N, K) rows, and the portable path.
  if (streams_in_place(w)) {
    matmul_few_rows_streaming(x, M, ldx, w, bias, y, ldy, accumulate, pool);
    return;
  }
  constexpr int kCols = 256;
  const int K = w.k, N = w.n;
  const int tasks = (N + kCols - 1) / kCols;
  pool.parallel_for(tasks, 2.0 * M * K * N, [&](int task, int) {
    const int j0 = task * kCols, j1 = std::min(N, j0 + kCols), nc = j1 - j0;
    float acc[kSmallRows][kCols];
    float wrow[kCols];
    const bool simd = isa_at_least(Isa::Avx2Fma) && (w.dtype == DType::F32 || w.dtype == DType::F16);
    for (int m = 0; m < M; ++m)
      for (int j = 0; j < nc; ++j) acc[m][j] = 0.0f;
    if (w.dtype == DType::I8) {
      // stored (N, K) here (the (K, N) case streams above): unscaled dots, scaled below
      active_dots_i8()(x, M, ldx, static_cast<const int8_t*>(w.data), K, j0, nc, &acc[0][0], kCols);
    } else if (simd) {  // stored (N, K): (K, N) streams above
      const auto dots = active_isa() == Isa::Avx512 ? avx512_kernels()->dots : dots_avx2;
      dots(x, M, ldx, w.data, w.dtype == DType::F16, K, j0, nc, &acc[0][0], kCols);
    } else if (!w.transposed) {
      for (int kk = 0; kk < K; ++kk) {
        const float* wr;
        if (w.dtype == DType::F32) {
          wr = static_cast<const float*>(w.data) + size_t(kk) * N + j0;
        } else {
          for (int j = 0; j < nc; ++j) wrow[j] = w.at(kk, j0 + j);
          wr = wrow;
        }
        for (int m = 0; m < M; ++m) {
          const float xv = x[size_t(m) * ldx + kk];
          float* a = acc[m];
          for (int j = 0; j < nc; ++j) a[j] += xv * wr[j];
        }
      }
    } else if (isa_at_least(Isa::Avx2Fma)) {
      // stored (N, K), bf16: 8 rows at a time widened (exact), then the fp32 dot kernel on
      // them, grouped as it groups an fp32 matrix's rows: the bits of the same values in fp32
      thread_local std::vector<float> rows;  // per thread: several calls per token for a tied x_out
      if (rows.size() < size_t(8) * K) rows.resize(size_t(8) * K);
      const auto dots = active_isa() == Isa::Avx512 ? avx512_kernels()->dots : dots_avx2;
      for (int j = 0; j < nc; j += 8) {
        const int cnt = std::min(8, nc - j);
        for (int r = 0; r < cnt; ++r) w.row_f32(j0 + j + r, rows.data() + size_t(r) * K);
        dots(x, M, ldx, rows.data(), false, K, 0, cnt, &acc[0][j], kCols);
      }
    } else {
      // stored (N, K): each output is a dot product with a contiguous row
      std::vector<float> row(K);
      for (int j = 0; j < nc; ++j) {
        w.row_f32(j0 + j, row.data());
        for (int m = 0; m < M; ++m) {
          const float* xm = x + size_t(m) * ldx;
          float d = 0.0f;
          for (int kk = 0; kk < K; ++kk) d += xm[kk] * row[kk];
          acc[m][j] = d;
        }
      }
    }
    for (int m = 0; m < M; ++m) {
      float* yr = y + size_t(m) * ldy + j0;
      for (int j = 0; j < nc; ++j) {
        const float a = w.dtype == DType::I8 ? acc[m][j] * w.scales[j0 + j] : acc[m][j];
        const float v = a + (bias ? bias[j0 + j] : 0.0f);
        yr[j] = accumulate ? yr[j] + v : v;
      }
    }
  });
}

void matmul(const float* x, int M, int ldx, const WeightView& w, const float* bias, float* y,
            int ldy, bool accumulate, ThreadPool& pool) {
  if (M <= 0 || w.n <= 0) return;
  check_view(w);
  if (M <= few_rows_limit(w)) {
    matmul_few_rows(x, M, ldx, w, bias, y, ldy, accumulate, pool);
    return;
  }
  const int K = w.k;
  const double flops = 2.0 * M * K * w.n;
  const int threads = pool.threads_for(flops);
  const int nblocks = (w.n + kColsPerTask - 1) / kColsPerTask;
  // Enough tasks for every thread: split rows too when there are few column blocks.
  const int mchunks = std::max(1, std::min((M + kMR - 1) / kMR, (2 * threads + nblocks - 1) / nblocks));
  const int rows_per_chunk = ((M + mchunks - 1) / mchunks + kMR - 1) / kMR * kMR;
  struct Scratch {
    Buffer<float> wpanels, xpanel, tile;
  };
  std::vector<Scratch> scratch(pool.size());
  const TileGemm tile_gemm = active_tile_gemm();
  // Two row panels per pass (the AVX-512 kernel's 8 x 48 tile covers 2 x 2 panels; the
  // others loop over the panels, each output's arithmetic unchanged).
  constexpr int kRowPanels = 2, kRowsPerPass = kRowPanels * kMR;
  pool.parallel_for(nblocks * mchunks, flops, [&](int task, int worker) {
    const int nb = task % nblocks, mc = task / nblocks;
    const int n0 = nb * kColsPerTask, ncols = std::min(kColsPerTask, w.n - n0);
    const int npanels = (ncols + kNR - 1) / kNR;
    const int m_begin = mc * rows_per_chunk, m_end = std::min(M, m_begin + rows_per_chunk);
    if (m_begin >= m_end) return;
    Scratch& s = scratch[worker];
    if (s.wpanels.size() == 0) {
      s.wpanels.reset(size_t(std::max(K, 1)) * kColsPerTask, "matmul weight panels");
      s.xpanel.reset(size_t(std::max(K, 1)) * kRowsPerPass, "matmul row panels");
      s.tile.reset(size_t(kRowsPerPass) * kColsPerTask, "matmul tile");
    }
    for (int p = 0; p < npanels; ++p) pack_weight_panel(w, n0 + p * kNR, s.wpanels.data() + size_t(p) * K * kNR);
    for (int m0 = m_begin; m0 < m_end; m0 += kRowsPerPass) {
      const int rows_all = std::min(kRowsPerPass, m_end - m0);
      const int panels_m = (rows_all + kMR - 1) / kMR;
      for (int pm = 0; pm < panels_m; ++pm)
        pack_rows(x, ldx, K, m0 + pm * kMR, std::min(kMR, rows_all - pm * kMR), s.xpanel.data() + size_t(pm) * K * kMR);
      tile_gemm(K, s.xpanel.data(), panels_m, s.wpanels.data(), npanels, s.tile.data(), kColsPerTask);
      for (int r = 0; r < rows_all; ++r) {
        float* yr = y + size_t(m0 + r) * ldy + n0;
        const float* tr = s.tile.data() + size_t(r) * kColsPerTask;
        for (int j = 0; j < ncols; ++j) {
          const float v = tr[j] + (bias ? bias[n0 + j] : 0.0f);
          yr[j] = accumulate ? yr[j] + v : v;
        }
      }
    }
  });
}

// The portable int8 few-row kernels (gemv.h's int8 contracts): plain loops, used with
// JUKEBOX_CPU=generic and on CPUs without AVX2 (here rather than in a file of their own:
// the CUDA helper tests link this file with a fixed list of others).
void gemv_krange_i8_generic(const float* x, int M, int ldx, const int8_t* w, int N, int k0, int k1, int j0,
                            int nc, float* acc, int ldacc) {
  for (int m = 0; m < M; ++m)
    for (int j = 0; j < nc; ++j) acc[size_t(m) * ldacc + j] = 0.0f;
  // k outer: W is read front to back as the SIMD kernels read it.
  for (int k = k0; k < k1; ++k) {
    const int8_t* wr = w + size_t(k) * N + j0;
    for (int m = 0; m < M; ++m) {
      const float xv = x[size_t(m) * ldx + k];
      float* a = acc + size_t(m) * ldacc;
      for (int j = 0; j < nc; ++j) a[j] += xv * float(wr[j]);
    }
  }
}

void dots_i8_generic(const float* x, int M, int ldx, const int8_t* w, int K, int j0, int nc, float* acc,
                     int ldacc) {
  for (int j = 0; j < nc; ++j) {
    const int8_t* wr = w + size_t(j0 + j) * K;
    for (int m = 0; m < M; ++m) {
      const float* xm = x + size_t(m) * ldx;
      float d = 0.0f;
      for (int k = 0; k < K; ++k) d += xm[k] * float(wr[k]);
      acc[size_t(m) * ldacc + j] = d;
    }
  }
}

void dequant_i8_generic(const int8_t* q, const float* scales, float* dst, int n) {
  for (int i = 0; i < n; ++i) dst[i] = float(q[i]) * scales[i];
}

}  // namespace jb
