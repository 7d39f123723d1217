// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
// counter-based generator. The random numbers of a token are a pure function of
// (seed, stream, sample, position), so sampling gives the same codes for any batch split,
// on any backend, and a resumed run equals an uninterrupted one without saving RNG state.
// One implementation serves both backends: common/philox.h (host and device code).
#pragma once
#include <cstdint>

#include "../../common/philox.h"

namespace jb {

struct Philox4x32 {
  // A uniform double in [0, 1) with 53 random bits for counter (c0, c1, c2, c3).
  static double uniform(uint64_t seed, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3) {
    return gpu::philox_uniform(seed, c0, c1, c2, c3);
  }
};

}  // namespace jb
