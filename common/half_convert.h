// fp32 <-> fp16 bit conversions for weights uploaded to the device: fp32 checkpoints are
// converted once at load (round to nearest, ties to even, as torch's .half() does), and
// the same code runs on the host (upload, tests) and the device. Plain C++ under g++, so
// cuda/test/helpers_test.cc checks it exhaustively against csrc/core/half.h.
#pragma once
#include <stdint.h>

#include "jb_hd.h"

namespace jb {
namespace gpu {

JB_HD uint32_t f32_bits(float f) {
  union {
    float f;
    uint32_t u;
  } v;
  v.f = f;
  return v.u;
}

JB_HD float f32_from_bits(uint32_t u) {
  union {
    float f;
    uint32_t u;
  } v;
  v.u = u;
  return v.f;
}

/** IEEE binary16 nearest to f (ties to even); overflow to inf, NaN stays NaN (quiet). */
JB_HD uint16_t float_to_half_rne(float f) {
  const uint32_t x = f32_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t exp = (x >> 23) & 0xffu;
  uint32_t mant = x & 0x7fffffu;
  if (exp == 0xffu) return uint16_t(sign | 0x7c00u | (mant ? 0x200u : 0u));  // inf / NaN
  const int e = int(exp) - 127 + 15;                                          // half exponent
  if (e >= 0x1f) return uint16_t(sign | 0x7c00u);                             // overflow
  if (e <= 0) {
    // Subnormal half (or zero): shift the full mantissa (implicit 1) right, rounding to even.
    if (e < -10) return uint16_t(sign);  // below half the smallest subnormal: +-0
    mant |= 0x800000u;
    const int shift = 14 - e;  // 14..24
    const uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1);
    const uint32_t r = q + ((rem > half || (rem == half && (q & 1u))) ? 1u : 0u);
    return uint16_t(sign | r);  // a carry into bit 10 gives the smallest normal, correctly
  }
  const uint32_t q = (uint32_t(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  // A carry out of the mantissa bumps the exponent, up to inf: also correct.
  const uint32_t r = q + ((rem > 0x1000u || (rem == 0x1000u && (q & 1u))) ? 1u : 0u);
  return uint16_t(sign | r);
}

/** binary16 bits to fp32, exact. */
JB_HD float half_to_float_bits(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1fu) return f32_from_bits(sign | 0x7f800000u | (mant << 13));
  if (exp != 0) return f32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
  if (mant == 0) return f32_from_bits(sign);
  exp = 113;
  while ((mant & 0x400u) == 0) {
    mant <<= 1;
    --exp;
  }
  return f32_from_bits(sign | (exp << 23) | ((mant & 0x3ffu) << 13));
}

}  // namespace gpu
}  // namespace jb
