// Which instruction set the CPU kernels use, chosen once at run time. JUKEBOX_CPU=generic
// forces the portable kernels (tests use it to exercise both paths on one machine).
#pragma once

namespace jb {

enum class Isa { Generic, Avx2Fma };

Isa detected_isa();        // what this CPU supports
Isa active_isa();          // what the kernels use (detected, unless overridden)
void set_active_isa(Isa);  // tests and benchmarks; clamps to what the CPU supports
const char* isa_name(Isa);

}  // namespace jb
