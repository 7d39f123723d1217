// Vector primitives for the attention inner loops (a query against one key; a value
// accumulated with a weight). Plain C++ leaves float reductions scalar (vectorising them
// would change rounding, which the compiler may not do by itself), so the AVX2 versions
// are picked at run time like the other kernels.
#pragma once

namespace jb {

using DotFn = float (*)(const float* a, const float* b, int n);
using AxpyFn = void (*)(float alpha, const float* x, float* y, int n);  // y += alpha * x

float dot_generic(const float* a, const float* b, int n);
void axpy_generic(float alpha, const float* x, float* y, int n);
float dot_avx2(const float* a, const float* b, int n);
void axpy_avx2(float alpha, const float* x, float* y, int n);
float dot_avx512(const float* a, const float* b, int n);   // vec_avx512.cc
void axpy_avx512(float alpha, const float* x, float* y, int n);

// LayerNorm (eps 1e-5, statistics in double) of 4 consecutive rows of `width` floats,
// bit-identical to the scalar loop in transformer.cc; y may equal x.
void layer_norm4_avx2(const float* x, int width, const float* g, const float* b, float* y);

DotFn active_dot();
AxpyFn active_axpy();

}  // namespace jb
