#include "cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernels_avx512.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace jb {

#if defined(__x86_64__) || defined(__i386__)
// The AVX-512 kernels are a separate part of the build (compiled with AVX-512 flags; see
// binding.gyp and kernels_avx512.h). A program that links the engine without them (the
// CUDA helper tests compile a subset of csrc/cpu) sees a null table and never selects them.
extern const Avx512Kernels kAvx512Kernels __attribute__((weak));
#endif

const Avx512Kernels* avx512_kernels() {
#if defined(__x86_64__) || defined(__i386__)
  return &kAvx512Kernels;  // null when the table is not linked in (weak reference)
#else
  return nullptr;
#endif
}

namespace {

struct CpuFlags {
  bool avx2_fma_f16c = false;
  bool avx512 = false;  // F + BW + DQ + VL, and the OS saves opmask + ZMM state
  bool bf16 = false, vnni = false;
};

#if defined(__x86_64__) || defined(__i386__)
// XGETBV(0): which register states the OS saves on a context switch. Only valid when
// CPUID says OSXSAVE; the caller checks that first.
unsigned long long xcr0() {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}
#endif

CpuFlags read_flags() {
  CpuFlags f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
  if (!osxsave || !avx) return f;
  const unsigned long long xcr = xcr0();
  const bool os_ymm = (xcr & 0x6) == 0x6;      // SSE + AVX state
  const bool os_zmm = (xcr & 0xe6) == 0xe6;    // + opmask, ZMM_Hi256, Hi16_ZMM
  if (!os_ymm) return f;
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = (b >> 5) & 1;
  const bool avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
  const bool vnni = (c >> 11) & 1;
  const unsigned max_sub = a;
  bool bf16 = false;
  if (max_sub >= 1) {
    unsigned a1, b1, c1, d1;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    bf16 = (a1 >> 5) & 1;
  }
  f.avx2_fma_f16c = avx2 && fma && f16c;
  f.avx512 = f.avx2_fma_f16c && os_zmm && avx512f && avx512dq && avx512bw && avx512vl;
  f.bf16 = f.avx512 && bf16;
  f.vnni = f.avx512 && vnni;
#endif
  return f;
}

const CpuFlags& flags() {
  static const CpuFlags f = read_flags();
  return f;
}

Isa clamp(Isa isa) {
  const int best = int(detected_isa());
  return int(isa) > best ? Isa(best) : isa;
}

}  // namespace

Isa detected_isa() {
  static const Isa isa = [] {
    const CpuFlags& f = flags();
    if (f.avx512 && avx512_kernels() != nullptr) return Isa::Avx512;
    // F16C (fp16 weights) ships with every AVX2 CPU, but the kernels use it: check it too.
    if (f.avx2_fma_f16c) return Isa::Avx2Fma;
    return Isa::Generic;
  }();
  return isa;
}

bool cpu_has_avx512_bf16() { return detected_isa() == Isa::Avx512 && flags().bf16; }
bool cpu_has_avx512_vnni() { return detected_isa() == Isa::Avx512 && flags().vnni; }

bool parse_isa(const char* name, Isa* out) {
  if (!name) return false;
  if (std::strcmp(name, "generic") == 0) {
    *out = Isa::Generic;
  } else if (std::strcmp(name, "avx2") == 0 || std::strcmp(name, "avx2-fma") == 0) {
    *out = Isa::Avx2Fma;
  } else if (std::strcmp(name, "avx512") == 0) {
    *out = Isa::Avx512;
  } else {
    return false;
  }
  return true;
}

static std::atomic<int>& active_slot() {
  static std::atomic<int> slot([] {
    Isa want = detected_isa();
    parse_isa(std::getenv("JUKEBOX_CPU"), &want);  // unknown values: the detected ISA
    return int(clamp(want));
  }());
  return slot;
}

Isa active_isa() { return Isa(active_slot().load(std::memory_order_relaxed)); }

void set_active_isa(Isa isa) { active_slot().store(int(clamp(isa)), std::memory_order_relaxed); }

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2Fma: return "avx2-fma";
    default: return "generic";
  }
}

}  // namespace jb
