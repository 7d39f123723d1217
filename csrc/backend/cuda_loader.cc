#include "cuda_loader.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#include <sys/stat.h>
#define JB_HAVE_DLOPEN 1
#else
#define JB_HAVE_DLOPEN 0
#endif

namespace jb {

namespace {

const jb_cuda_api* g_api = nullptr;

#if JB_HAVE_DLOPEN
bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string dir_of(const std::string& p) {
  const size_t s = p.find_last_of('/');
  return s == std::string::npos ? std::string(".") : p.substr(0, s);
}

// The path of the addon (.node) this code is linked into.
std::string addon_path() {
  Dl_info info;
  if (::dladdr(reinterpret_cast<void*>(&cuda_library_candidates), &info) && info.dli_fname) return info.dli_fname;
  return "";
}

const char* platform_arch() {
#if defined(__linux__) && defined(__x86_64__)
  return "linux-x64";
#elif defined(__linux__) && defined(__aarch64__)
  return "linux-arm64";
#else
  return "unsupported";
#endif
}

std::string driver_text(int v) {
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}
#endif

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

std::string how_to_build() {
  return "build it with `npm run build:cuda` (needs the CUDA toolkit (nvcc) and cmake), or point "
         "JUKEBOX_CUDA_LIB at a built " JB_CUDA_LIBRARY_NAME;
}

void probe_library(CudaBackendStatus& s) {
#if !JB_HAVE_DLOPEN
  s.reason = "the CUDA backend is only supported on Linux";
  return;
#else
  const char* env = std::getenv("JUKEBOX_CUDA_LIB");
  s.searched = cuda_library_candidates();
  std::string path;
  for (const std::string& c : s.searched)
    if (file_exists(c)) {
      path = c;
      break;
    }
  if (path.empty()) {
    if (env && *env) {
      s.library = env;
      s.reason = std::string("JUKEBOX_CUDA_LIB is set to ") + env + ", which is not a file";
    } else {
      s.reason = "the CUDA backend library " JB_CUDA_LIBRARY_NAME " was not found (looked in ";
      for (size_t i = 0; i < s.searched.size(); ++i) s.reason += (i ? ", " : "") + dir_of(s.searched[i]);
      s.reason += "); " + how_to_build();
    }
    return;
  }
  s.library = path;
  ::dlerror();
  void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = ::dlerror();
    s.reason = "could not load the CUDA backend library " + path + ": " + (e ? e : "unknown dlopen error");
    return;
  }
  auto version_fn = reinterpret_cast<jb_cuda_api_version_fn>(::dlsym(h, "jb_cuda_api_version"));
  auto get_fn = reinterpret_cast<jb_cuda_get_api_fn>(::dlsym(h, "jb_cuda_get_api"));
  if (!version_fn || !get_fn) {
    s.reason = path + " is not a jukebox CUDA backend library (it lacks jb_cuda_api_version/jb_cuda_get_api)";
    ::dlclose(h);
    return;
  }
  s.api_version = version_fn();
  if (s.api_version != JB_CUDA_API_VERSION) {
    s.reason = "version mismatch: " + path + " implements CUDA backend API version " + std::to_string(s.api_version) +
               " but this addon needs version " + std::to_string(JB_CUDA_API_VERSION) +
               "; rebuild it from this package with `npm run build:cuda`";
    ::dlclose(h);
    return;
  }
  const jb_cuda_api* api = get_fn(JB_CUDA_API_VERSION);
  if (!api || api->api_version != JB_CUDA_API_VERSION || api->struct_size < sizeof(jb_cuda_api)) {
    s.reason = "version mismatch: " + path + " returned no function table of API version " +
               std::to_string(JB_CUDA_API_VERSION) + "; rebuild it with `npm run build:cuda`";
    ::dlclose(h);
    return;
  }
  // Loaded for good: the handle stays open for the life of the process.
  g_api = api;
  s.library_loaded = true;
  s.build_info = api->build_info ? api->build_info() : "";
  s.capabilities = api->capabilities ? api->capabilities() : 0;
  api->versions(&s.runtime_version, &s.driver_version);
  int count = 0;
  const int st = api->device_count(&count);
  if (st != JB_CUDA_OK || count <= 0) {
    const std::string detail = api->last_error();
    if (st == JB_CUDA_ERR_NO_DRIVER && s.driver_version == 0) {
      s.reason = "no NVIDIA driver: the CUDA driver library (libcuda.so.1) is not installed or not loadable";
    } else if (st == JB_CUDA_ERR_NO_DRIVER) {
      s.reason = "the NVIDIA driver (CUDA " + driver_text(s.driver_version) + ") is too old for the CUDA " +
                 driver_text(s.runtime_version) + " runtime of " + path + "; update the driver";
    } else if (st == JB_CUDA_ERR_NO_DEVICE || (st == JB_CUDA_OK && count <= 0)) {
      s.reason = "no CUDA device found (the driver sees none; check CUDA_VISIBLE_DEVICES)";
    } else {
      s.reason = "CUDA device query failed: " + detail;
    }
    if (!detail.empty() && s.reason.find(detail) == std::string::npos) s.reason += " (" + detail + ")";
    return;
  }
  bool any_supported = false;
  std::string unsupported;
  for (int i = 0; i < count; ++i) {
    jb_cuda_device_info info;
    if (api->device_info(i, &info) != JB_CUDA_OK) continue;
    CudaDeviceDesc d;
    d.index = info.index;
    d.name = info.name;
    d.cc_major = info.cc_major;
    d.cc_minor = info.cc_minor;
    d.multiprocessors = info.multiprocessors;
    d.total_bytes = info.total_bytes;
    d.supported = info.supported != 0;
    any_supported = any_supported || d.supported;
    if (!d.supported)
      unsupported += (unsupported.empty() ? "" : ", ") + d.name + " (sm_" + std::to_string(d.cc_major) +
                     std::to_string(d.cc_minor) + ")";
    s.devices.push_back(d);
  }
  if (!any_supported) {
    s.reason = "no supported CUDA device: " + (unsupported.empty() ? std::string("none could be queried") : unsupported) +
               "; this build has kernels for " + s.build_info + " (compute capability 8.0 or newer)";
    return;
  }
  const uint64_t missing = JB_CUDA_CAPS_GENERATE & ~s.capabilities;
  if (missing) {
    s.reason = "the CUDA backend library " + path + " does not implement the kernels generation needs yet " +
               "(capabilities " + hex(s.capabilities) + ", missing " + hex(missing) + "; see cuda/README.md)";
    return;
  }
  s.available = true;
#endif
}

// The emulation build of the backend (cuda/emu, JB_CUDA_CAP_EMULATED) loads and probes like
// any other library, but runs the kernels on the CPU: it is reported as such and never
// chosen by 'auto'; asked for by name (--backend cuda) it runs the models, which is how the
// CUDA path is tested without a GPU (csrc/backend/cuda_device.cc cuda_model_support).
void probe(CudaBackendStatus& s) {
  probe_library(s);
  if (!s.library_loaded || !(s.capabilities & JB_CUDA_CAP_EMULATED)) return;
  const std::string why = s.available ? std::string() : s.reason;
  s.available = false;
  s.reason = "cuda (emulated on the CPU): " + s.library +
             " is the emulation build of the CUDA backend (cuda/emu), which runs the CUDA kernels on the CPU to test them "
             "without a GPU; 'auto' never uses it (--backend cuda runs it, slowly)" +
             (why.empty() ? std::string() : " (" + why + ")");
}

}  // namespace

std::vector<std::string> cuda_library_candidates() {
  std::vector<std::string> out;
#if JB_HAVE_DLOPEN
  const char* env = std::getenv("JUKEBOX_CUDA_LIB");
  if (env && *env) {
    out.push_back(env);
    return out;
  }
  const std::string addon = addon_path();
  if (addon.empty()) return out;
  const std::string dir = dir_of(addon);  // build/Release or prebuilds/<platform>-<arch>
  const std::string root = dir_of(dir_of(dir));
  const std::string lib = JB_CUDA_LIBRARY_NAME;
  out.push_back(dir + "/" + lib);
  out.push_back(root + "/build/cuda/" + lib);
  out.push_back(root + "/prebuilds/" + platform_arch() + "/" + lib);
  // de-duplicate (the addon may itself sit in prebuilds/<platform>-<arch>)
  std::vector<std::string> uniq;
  for (const std::string& p : out) {
    bool seen = false;
    for (const std::string& q : uniq) seen = seen || q == p;
    if (!seen) uniq.push_back(p);
  }
  out.swap(uniq);
#endif
  return out;
}

const CudaBackendStatus& cuda_backend_status() {
  static CudaBackendStatus status;
  static std::once_flag once;
  std::call_once(once, [] {
    try {
      probe(status);
    } catch (const std::exception& e) {
      status.available = false;
      status.reason = std::string("CUDA backend probe failed: ") + e.what();
    }
  });
  return status;
}

const jb_cuda_api* cuda_api() {
  cuda_backend_status();
  return g_api;
}

}  // namespace jb
