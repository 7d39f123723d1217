#include "cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace jb {

Isa detected_isa() {
#if defined(__x86_64__) || defined(__i386__)
  static const Isa isa = [] {
    __builtin_cpu_init();
    // F16C (fp16 weights) ships with every AVX2 CPU, but the kernels use it: check it too.
    return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
            __builtin_cpu_supports("f16c"))
               ? Isa::Avx2Fma
               : Isa::Generic;
  }();
  return isa;
#else
  return Isa::Generic;
#endif
}

static std::atomic<int>& active_slot() {
  static std::atomic<int> slot([] {
    const char* env = std::getenv("JUKEBOX_CPU");
    if (env && std::strcmp(env, "generic") == 0) return int(Isa::Generic);
    return int(detected_isa());
  }());
  return slot;
}

Isa active_isa() { return Isa(active_slot().load(std::memory_order_relaxed)); }

void set_active_isa(Isa isa) {
  if (isa == Isa::Avx2Fma && detected_isa() != Isa::Avx2Fma) isa = Isa::Generic;
  active_slot().store(int(isa), std::memory_order_relaxed);
}

const char* isa_name(Isa isa) { return isa == Isa::Avx2Fma ? "avx2-fma" : "generic"; }

}  // namespace jb
