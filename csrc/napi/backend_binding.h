#pragma once
#include <napi.h>

namespace jb {
// backendInfo(): { cpu: { available, isa, detectedIsa, threads }, cuda: { available, reason?,
// library?, searched, buildInfo?, apiVersion, capabilities, runtimeVersion, driverVersion,
// devices: [...] } }. Probing the CUDA library happens once per process; never throws.
Napi::Value backend_info_js(const Napi::CallbackInfo& info);
// cudaSelfTest(device = 0): runs the CUDA library's self-test kernel (cuda/src/self_test.cu)
// on a device; returns a string describing what ran, or throws ERR_BACKEND_UNAVAILABLE when
// the library is not loaded and ERR_NATIVE when the test fails. For the parity suite.
Napi::Value cuda_self_test_js(const Napi::CallbackInfo& info);
}  // namespace jb
