// Philox4x32-10, host and device: the one implementation both backends use (the CPU engine's
// csrc/core/philox.h calls it), so a token's uniform is the same pure function of (seed,
// stream, sample, position) on either. Checked against Random123's known answers by
// cuda/test/kernels_ref_test.cc.
#pragma once
#include <stdint.h>

#include "jb_hd.h"

namespace jb {
namespace gpu {

JB_HD void philox_round(uint32_t ctr[4], const uint32_t key[2]) {
  const uint64_t p0 = uint64_t(0xD2511F53u) * ctr[0];
  const uint64_t p1 = uint64_t(0xCD9E8D57u) * ctr[2];
  const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
  const uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
  const uint32_t c0 = hi1 ^ ctr[1] ^ key[0];
  const uint32_t c2 = hi0 ^ ctr[3] ^ key[1];
  ctr[0] = c0;
  ctr[1] = lo1;
  ctr[2] = c2;
  ctr[3] = lo0;
}

/** Ten rounds with the Weyl key schedule (key = the seed's low, high words): ctr becomes 4 x 32 random bits. */
JB_HD void philox_generate(uint32_t ctr[4], uint64_t seed) {
  uint32_t key[2] = {uint32_t(seed), uint32_t(seed >> 32)};
  for (int r = 0; r < 10; ++r) {
    philox_round(ctr, key);
    key[0] += 0x9E3779B9u;
    key[1] += 0xBB67AE85u;
  }
}

/** A uniform double in [0, 1) with 53 random bits for counter (c0, c1, c2, c3). */
JB_HD double philox_uniform(uint64_t seed, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3) {
  uint32_t ctr[4] = {c0, c1, c2, c3};
  philox_generate(ctr, seed);
  const uint64_t bits = (uint64_t(ctr[0]) << 21) ^ uint64_t(ctr[1] >> 11);
  return double(bits & ((uint64_t(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
}

/** The constant the engine puts in the last counter word of a token draw (decode_session.cc). */
constexpr uint32_t kTokenDrawTag = 0x6a6b7878u;

}  // namespace gpu
}  // namespace jb
