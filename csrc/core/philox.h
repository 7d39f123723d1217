// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
// counter-based generator. The random numbers of a token are a pure function of
// (seed, stream, sample, position), so sampling gives the same codes for any batch split,
// on any backend, and a resumed run equals an uninterrupted one without saving RNG state.
#pragma once
#include <cstdint>

namespace jb {

struct Philox4x32 {
  static void round(uint32_t ctr[4], const uint32_t key[2]) {
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
  // Ten rounds with the Weyl key schedule; returns 4 x 32 random bits in ctr.
  static void generate(uint32_t ctr[4], uint64_t seed) {
    uint32_t key[2] = {uint32_t(seed), uint32_t(seed >> 32)};
    for (int r = 0; r < 10; ++r) {
      round(ctr, key);
      key[0] += 0x9E3779B9u;
      key[1] += 0xBB67AE85u;
    }
  }
  // A uniform double in [0, 1) with 53 random bits for counter (c0, c1, c2, c3).
  static double uniform(uint64_t seed, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3) {
    uint32_t ctr[4] = {c0, c1, c2, c3};
    generate(ctr, seed);
    const uint64_t bits = (uint64_t(ctr[0]) << 21) ^ uint64_t(ctr[1] >> 11);
    return double(bits & ((uint64_t(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
  }
};

}  // namespace jb
