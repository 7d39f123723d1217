#pragma once
#include <napi.h>

namespace jb {
// Direct access to the CPU kernels and their scalar references, for the parity tests and
// the benchmarks. Synchronous: inputs are small in tests, and benchmarks time the call.
Napi::Object init_kernels_binding(Napi::Env env);
}
