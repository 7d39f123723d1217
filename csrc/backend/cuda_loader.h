// Run-time loading of the optional CUDA backend library (libjukebox-cuda.so, built from
// cuda/ by `npm run build:cuda`, or installed as the CUDA variant package
// jukebox-node-linux-x64-cuda, `npm run pack:cuda`). The addon never links against CUDA: it
// dlopens the library on first use, checks the ABI version of its function table (cuda/
// include/jukebox_cuda.h), for the variant package also that its version is this package's,
// and asks it for devices. Nothing here throws or fails the addon's load; when CUDA cannot be
// used, status().reason says why and what to do.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "jukebox_cuda.h"

namespace jb {

struct CudaDeviceDesc {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int multiprocessors = 0;
  uint64_t total_bytes = 0;
  bool supported = false;  // the library has a kernel image for it
};

struct CudaBackendStatus {
  // Usable for generation: library loaded, version matches, a supported device, and the
  // library implements every kernel generation needs (JB_CUDA_CAPS_GENERATE).
  bool available = false;
  bool library_loaded = false;  // library found, loaded and of the right version
  std::string reason;           // why not available (empty when available)
  std::string library;          // path of the library loaded or last tried
  std::vector<std::string> searched;  // paths looked at, in order
  // Where the library came from: "JUKEBOX_CUDA_LIB", "local build" (beside the addon,
  // build/cuda/, prebuilds/) or "package" (the CUDA variant package); empty if none found.
  std::string source;
  // The variant package found by module resolution (even when its version is refused):
  // its name, version and folder; main_version is this package's, which it must equal.
  std::string package_name, package_version, package_dir, main_version;
  std::string build_info;
  uint32_t api_version = 0;     // the library's (0: not loaded)
  uint64_t capabilities = 0;
  int runtime_version = 0, driver_version = 0;
  std::vector<CudaDeviceDesc> devices;
};

// Candidate paths for the library, in search order: $JUKEBOX_CUDA_LIB alone when set;
// else the local builds: next to the addon (build/Release/ or prebuilds/<platform>-<arch>/),
// build/cuda/ and prebuilds/<platform>-<arch>/ of the package the addon belongs to; then
// the CUDA variant package (jukebox-node-<platform>-<arch>-cuda/libjukebox-cuda.so) in each
// node_modules folder Node's module resolution would look in from that package's folder.
std::vector<std::string> cuda_library_candidates();

// The variant package's name for this platform ("jukebox-node-linux-x64-cuda").
std::string cuda_package_name();

// Loads and probes once per process (thread-safe); later calls return the same result.
const CudaBackendStatus& cuda_backend_status();

// The function table, or null when the library is not loaded.
const jb_cuda_api* cuda_api();

}  // namespace jb
