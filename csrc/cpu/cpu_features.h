// Which instruction set the CPU kernels use, chosen once at run time:
//   Avx512  AVX-512 F+BW+DQ+VL with the OS saving the ZMM state (XGETBV), plus AVX2/FMA/F16C
//   Avx2Fma AVX2 + FMA + F16C
//   Generic the portable C++ kernels (any CPU)
// JUKEBOX_CPU=avx512|avx2|generic forces one (clamped to what the CPU has; tests and
// benchmarks use it, or set_active_isa, to exercise every path on one machine). The order
// of the enum is the order of capability: a kernel written for Avx2Fma also runs when
// Avx512 is active (isa_at_least).
#pragma once

namespace jb {

enum class Isa { Generic = 0, Avx2Fma = 1, Avx512 = 2 };

Isa detected_isa();        // what this CPU supports (and this binary has kernels for)
Isa active_isa();          // what the kernels use (detected, unless overridden)
void set_active_isa(Isa);  // tests and benchmarks; clamps to what the CPU supports
const char* isa_name(Isa);  // "avx512", "avx2-fma", "generic"
// Parses "avx512", "avx2" / "avx2-fma", "generic"; false (out untouched) for anything else.
bool parse_isa(const char* name, Isa* out);
// Whether the active ISA includes `isa` (Avx512 includes Avx2Fma).
inline bool isa_at_least(Isa isa) { return int(active_isa()) >= int(isa); }

// Optional AVX-512 extensions, reported for information and for kernels that use them
// behind the same dispatch (false unless the Avx512 level is detected too).
bool cpu_has_avx512_bf16();
bool cpu_has_avx512_vnni();

}  // namespace jb
