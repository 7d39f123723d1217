// The emulation build's <mma.h> (cuda/emu): nvcuda::wmma fragments, so a tensor-core kernel
// written with the warp matrix API (rather than inline PTX) runs under emulation too.
//
// Model: every lane holds the whole tile in its fragment (num_elements = the tile's size;
// on a GPU each lane holds an unspecified share of it, so portable code only applies the
// same operation to every x[i]: that works with either). Each *_sync call is a warp
// collective over all 32 lanes, as CUDA requires: called by a partial warp, by diverged or
// exited lanes, it faults like any other collective (jbemu.h). mma_sync accumulates in the
// accumulator's type in k order (products of halves are exact in fp32; a GPU's order of the
// additions is unspecified, so results may differ from it by rounding).
// Shapes: m16n16k16, m32n8k16, m8n32k16 with __half inputs and float or __half accumulators.
#pragma once
#include "cuda_fp16.h"
#include "jbemu/jbemu.h"

namespace nvcuda {
namespace wmma {

struct row_major {};
struct col_major {};
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
enum layout_t { mem_row_major, mem_col_major };

namespace detail {
template <class Use, int M, int N, int K>
struct dims;
template <int M, int N, int K>
struct dims<matrix_a, M, N, K> {
  static constexpr int rows = M, cols = K;
};
template <int M, int N, int K>
struct dims<matrix_b, M, N, K> {
  static constexpr int rows = K, cols = N;
};
template <int M, int N, int K>
struct dims<accumulator, M, N, K> {
  static constexpr int rows = M, cols = N;
};
template <int M, int N, int K>
constexpr bool supported_shape() {
  return (M == 16 && N == 16 && K == 16) || (M == 32 && N == 8 && K == 16) || (M == 8 && N == 32 && K == 16);
}
inline void warp_sync(const char* what) { ::jbemu::syncwarp(what, 0, 0xffffffffu); }
template <class T>
inline float to_f(T v) {
  return float(v);
}
}  // namespace detail

template <class Use, int M, int N, int K, class T, class Layout = void>
class fragment {
  static_assert(detail::supported_shape<M, N, K>(), "wmma shape not supported (m16n16k16, m32n8k16, m8n32k16)");

 public:
  static constexpr int rows = detail::dims<Use, M, N, K>::rows, cols = detail::dims<Use, M, N, K>::cols;
  static constexpr int num_elements = rows * cols;
  using element_type = T;
  T x[num_elements];  // row-major tile
};

template <class Use, int M, int N, int K, class T, class L>
inline void fill_fragment(fragment<Use, M, N, K, T, L>& f, const T& v) {
  for (int i = 0; i < f.num_elements; ++i) f.x[i] = v;
}

// matrix_a / matrix_b: the layout is the fragment's.
template <class Use, int M, int N, int K, class T, class L>
inline void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const T* p, unsigned ldm) {
  static_assert(!std::is_same<L, void>::value, "matrix_a/matrix_b fragments name their layout");
  detail::warp_sync("wmma::load_matrix_sync");
  using F = fragment<Use, M, N, K, T, L>;
  for (int r = 0; r < F::rows; ++r)
    for (int c = 0; c < F::cols; ++c) f.x[r * F::cols + c] = std::is_same<L, row_major>::value ? p[size_t(r) * ldm + c] : p[size_t(c) * ldm + r];
}

// accumulator: the layout is the call's.
template <int M, int N, int K, class T>
inline void load_matrix_sync(fragment<accumulator, M, N, K, T>& f, const T* p, unsigned ldm, layout_t layout) {
  detail::warp_sync("wmma::load_matrix_sync");
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c) f.x[r * N + c] = layout == mem_row_major ? p[size_t(r) * ldm + c] : p[size_t(c) * ldm + r];
}

template <int M, int N, int K, class T>
inline void store_matrix_sync(T* p, const fragment<accumulator, M, N, K, T>& f, unsigned ldm, layout_t layout) {
  detail::warp_sync("wmma::store_matrix_sync");
  // every lane holds the tile; lane 0 writes it (the others would write the same values)
  if ((threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) % 32 == 0)
    for (int r = 0; r < M; ++r)
      for (int c = 0; c < N; ++c) (layout == mem_row_major ? p[size_t(r) * ldm + c] : p[size_t(c) * ldm + r]) = f.x[r * N + c];
  detail::warp_sync("wmma::store_matrix_sync");
}

template <int M, int N, int K, class LA, class LB, class TC>
inline void mma_sync(fragment<accumulator, M, N, K, TC>& d, const fragment<matrix_a, M, N, K, __half, LA>& a,
                     const fragment<matrix_b, M, N, K, __half, LB>& b, const fragment<accumulator, M, N, K, TC>& c) {
  detail::warp_sync("wmma::mma_sync");
  float out[M * N];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float acc = detail::to_f(c.x[i * N + j]);
      for (int k = 0; k < K; ++k) acc = fmaf(float(a.x[i * K + k]), float(b.x[k * N + j]), acc);
      out[i * N + j] = acc;
    }
  for (int i = 0; i < M * N; ++i) d.x[i] = TC(out[i]);
}

}  // namespace wmma
}  // namespace nvcuda
