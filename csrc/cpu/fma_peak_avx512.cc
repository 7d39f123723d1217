// The AVX-512 peak loop for fma_peak.cc: 16 independent chains of 512-bit FMAs, no loads
// or stores, enough to cover the FMA latency on two 512-bit FMA ports (Xeon Scalable: 4
// cycles x 2 ports = 8 chains needed) with margin. On Zen 4, which runs a 512-bit FMA as
// two 256-bit halves, it measures the same peak as the AVX2 loop. Compiled with AVX-512
// flags and reached only through kAvx512Kernels.
#include <immintrin.h>

namespace jb {

__attribute__((noinline)) float fma_loop_avx512(long iters, float seed) {
  // Every chain starts from a different value, or the compiler merges equal chains into one.
  const __m512 d = _mm512_set1_ps(1.0f / 1024);
  __m512 a0 = _mm512_set1_ps(seed), a1 = _mm512_add_ps(a0, d), a2 = _mm512_add_ps(a1, d), a3 = _mm512_add_ps(a2, d);
  __m512 a4 = _mm512_add_ps(a3, d), a5 = _mm512_add_ps(a4, d), a6 = _mm512_add_ps(a5, d), a7 = _mm512_add_ps(a6, d);
  __m512 a8 = _mm512_add_ps(a7, d), a9 = _mm512_add_ps(a8, d), a10 = _mm512_add_ps(a9, d), a11 = _mm512_add_ps(a10, d);
  __m512 a12 = _mm512_add_ps(a11, d), a13 = _mm512_add_ps(a12, d), a14 = _mm512_add_ps(a13, d), a15 = _mm512_add_ps(a14, d);
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (long i = 0; i < iters; ++i) {
    a0 = _mm512_fmadd_ps(a0, m, c); a1 = _mm512_fmadd_ps(a1, m, c);
    a2 = _mm512_fmadd_ps(a2, m, c); a3 = _mm512_fmadd_ps(a3, m, c);
    a4 = _mm512_fmadd_ps(a4, m, c); a5 = _mm512_fmadd_ps(a5, m, c);
    a6 = _mm512_fmadd_ps(a6, m, c); a7 = _mm512_fmadd_ps(a7, m, c);
    a8 = _mm512_fmadd_ps(a8, m, c); a9 = _mm512_fmadd_ps(a9, m, c);
    a10 = _mm512_fmadd_ps(a10, m, c); a11 = _mm512_fmadd_ps(a11, m, c);
    a12 = _mm512_fmadd_ps(a12, m, c); a13 = _mm512_fmadd_ps(a13, m, c);
    a14 = _mm512_fmadd_ps(a14, m, c); a15 = _mm512_fmadd_ps(a15, m, c);
  }
  const __m512 s = _mm512_add_ps(
      _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)), _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7))),
      _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)), _mm512_add_ps(_mm512_add_ps(a12, a13), _mm512_add_ps(a14, a15))));
  alignas(64) float out[16];
  _mm512_store_ps(out, s);
  return out[0];
}

}  // namespace jb
