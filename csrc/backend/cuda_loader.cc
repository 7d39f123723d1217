#include "cuda_loader.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
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
  if (s == 0) return "/";
  return s == std::string::npos ? std::string(".") : p.substr(0, s);
}

std::string base_of(const std::string& p) {
  const size_t s = p.find_last_of('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

// ---- the little JSON this needs: top-level string members of a package.json
// (name, version). Anything else is skipped; malformed text yields what was read so far.

void skip_ws(const std::string& t, size_t& i) {
  while (i < t.size() && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')) ++i;
}

bool read_string(const std::string& t, size_t& i, std::string& out) {
  if (i >= t.size() || t[i] != '"') return false;
  out.clear();
  for (++i; i < t.size(); ++i) {
    const char c = t[i];
    if (c == '"') {
      ++i;
      return true;
    }
    if (c == '\\' && i + 1 < t.size()) {
      const char e = t[++i];
      // package names and versions are ASCII; other escapes are kept as written
      out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
      continue;
    }
    out += c;
  }
  return false;
}

bool skip_value(const std::string& t, size_t& i) {
  skip_ws(t, i);
  if (i >= t.size()) return false;
  if (t[i] == '"') {
    std::string ignored;
    return read_string(t, i, ignored);
  }
  if (t[i] == '{' || t[i] == '[') {
    int depth = 0;
    while (i < t.size()) {
      const char c = t[i];
      if (c == '"') {
        std::string ignored;
        if (!read_string(t, i, ignored)) return false;
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') --depth;
      ++i;
      if (depth == 0) return true;
    }
    return false;
  }
  while (i < t.size() && t[i] != ',' && t[i] != '}' && t[i] != ']') ++i;  // number, true, false, null
  return true;
}

std::map<std::string, std::string> package_strings(const std::string& file) {
  std::map<std::string, std::string> out;
  std::ifstream in(file, std::ios::binary);
  if (!in) return out;
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string t = ss.str();
  size_t i = 0;
  skip_ws(t, i);
  if (i >= t.size() || t[i] != '{') return out;
  ++i;
  for (;;) {
    skip_ws(t, i);
    std::string key;
    if (!read_string(t, i, key)) return out;
    skip_ws(t, i);
    if (i >= t.size() || t[i] != ':') return out;
    ++i;
    skip_ws(t, i);
    if (i < t.size() && t[i] == '"') {
      std::string value;
      if (!read_string(t, i, value)) return out;
      out.emplace(key, value);
    } else if (!skip_value(t, i)) {
      return out;
    }
    skip_ws(t, i);
    if (i >= t.size() || t[i] != ',') return out;
    ++i;
  }
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

#if JB_HAVE_DLOPEN
// Where a candidate library comes from, for the report and for what a mismatch tells to do.
struct Candidate {
  std::string path;
  std::string source;       // "JUKEBOX_CUDA_LIB" | "local build" | "package"
  std::string package_dir;  // for "package": the package folder
};

// The folder of the package the addon belongs to: the addon is <root>/build/Release/x.node
// or <root>/prebuilds/<platform>-<arch>/x.node.
std::string package_root() {
  const std::string addon = addon_path();
  if (addon.empty()) return "";
  return dir_of(dir_of(dir_of(addon)));
}

std::vector<Candidate> candidates() {
  std::vector<Candidate> out;
  const char* env = std::getenv("JUKEBOX_CUDA_LIB");
  if (env && *env) {
    out.push_back({env, "JUKEBOX_CUDA_LIB", ""});
    return out;
  }
  const std::string addon = addon_path();
  if (addon.empty()) return out;
  const std::string dir = dir_of(addon);  // build/Release or prebuilds/<platform>-<arch>
  const std::string root = dir_of(dir_of(dir));
  const std::string lib = JB_CUDA_LIBRARY_NAME;
  for (const std::string& p : {dir + "/" + lib, root + "/build/cuda/" + lib, root + "/prebuilds/" + platform_arch() + "/" + lib}) {
    bool seen = false;  // the addon may itself sit in prebuilds/<platform>-<arch>
    for (const Candidate& q : out) seen = seen || q.path == p;
    if (!seen) out.push_back({p, "local build", ""});
  }
  // The variant package, where require() from the package folder would find it: Node's
  // NODE_MODULES_PATHS walk (<dir>/node_modules for the folder and each ancestor, skipping
  // folders that are themselves named node_modules). npm puts an installed (optional peer)
  // variant beside the package (<...>/node_modules/jukebox-node-linux-x64-cuda), pnpm in the
  // same virtual-store node_modules; NODE_PATH and the global folders are not searched.
  const std::string name = cuda_package_name();
  for (std::string d = root;; d = dir_of(d)) {
    if (base_of(d) != "node_modules") {
      const std::string pkg = (d == "/" ? std::string() : d) + "/node_modules/" + name;
      out.push_back({pkg + "/" + lib, "package", pkg});
    }
    if (d == "/" || d == "." || d.empty()) break;
  }
  return out;
}
#endif

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

std::string how_to_build(const CudaBackendStatus& s) {
  std::string v = s.main_version.empty() ? std::string() : "@" + s.main_version;
  return "install the CUDA variant package (`npm install " + cuda_package_name() + v +
         "`: Linux x64, needs only the NVIDIA driver), or build the library with `npm run build:cuda` (needs the CUDA "
         "toolkit (nvcc) and cmake), or point JUKEBOX_CUDA_LIB at a built " JB_CUDA_LIBRARY_NAME;
}

// What to do about a library that is not the one this addon needs.
std::string how_to_replace(const CudaBackendStatus& s) {
  if (s.source == "package")
    return "install the variant made for this version: `npm install " + s.package_name + "@" +
           (s.main_version.empty() ? std::string("<the version of jukebox-node>") : s.main_version) + "`";
  return "rebuild it from this package with `npm run build:cuda`";
}

void probe_library(CudaBackendStatus& s) {
#if !JB_HAVE_DLOPEN
  s.reason = "the CUDA backend is only supported on Linux";
  return;
#else
  const char* env = std::getenv("JUKEBOX_CUDA_LIB");
  const std::vector<Candidate> cands = candidates();
  const std::string root = package_root();
  const std::map<std::string, std::string> main_pkg = package_strings(root + "/package.json");
  const std::string main_name = main_pkg.count("name") ? main_pkg.at("name") : std::string("jukebox-node");
  if (main_pkg.count("version")) s.main_version = main_pkg.at("version");
  std::string path;
  const Candidate* chosen = nullptr;
  for (const Candidate& c : cands) {
    s.searched.push_back(c.path);
    // A local library counts where the file is; the package where its folder is (as for
    // require(), the first one found is the one, even if it lacks the library).
    if (c.source == "package" ? file_exists(c.package_dir + "/package.json") : file_exists(c.path)) {
      chosen = &c;
      break;
    }
  }
  if (!chosen) {
    if (env && *env) {
      s.library = env;
      s.reason = std::string("JUKEBOX_CUDA_LIB is set to ") + env + ", which is not a file";
    } else {
      s.reason = "the CUDA backend library " JB_CUDA_LIBRARY_NAME " was not found (looked in ";
      bool first = true;
      for (const Candidate& c : cands) {
        if (c.source == "package") continue;
        s.reason += (first ? "" : ", ") + dir_of(c.path);
        first = false;
      }
      s.reason += std::string(first ? "" : ", ") + "and for the package " + cuda_package_name() +
                  " in the node_modules folders above " + root + "); " + how_to_build(s);
    }
    return;
  }
  path = chosen->path;
  s.source = chosen->source;
  s.library = path;
  if (s.source == "package") {
    const std::map<std::string, std::string> pkg = package_strings(chosen->package_dir + "/package.json");
    s.package_dir = chosen->package_dir;
    s.package_name = pkg.count("name") ? pkg.at("name") : cuda_package_name();
    s.package_version = pkg.count("version") ? pkg.at("version") : "";
    if (s.package_version.empty()) {
      s.reason = "the CUDA variant package at " + s.package_dir + " has no readable version in its package.json; " +
                 how_to_replace(s);
      return;
    }
    // The package and the addon are released together: the library's ABI, and what its
    // kernels compute, are those of the same version only.
    if (!s.main_version.empty() && s.package_version != s.main_version) {
      s.reason = "version mismatch: the CUDA variant package " + s.package_name + " " + s.package_version + " (" +
                 s.package_dir + ") is not the one for " + main_name + " " + s.main_version + "; " + how_to_replace(s);
      return;
    }
    if (!file_exists(path)) {
      s.reason = "the CUDA variant package " + s.package_name + " " + s.package_version + " (" + s.package_dir +
                 ") has no " JB_CUDA_LIBRARY_NAME "; reinstall it (`npm install " + s.package_name + "@" + s.package_version + "`)";
      return;
    }
  }
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
               " but this addon needs version " + std::to_string(JB_CUDA_API_VERSION) + "; " + how_to_replace(s);
    ::dlclose(h);
    return;
  }
  const jb_cuda_api* api = get_fn(JB_CUDA_API_VERSION);
  if (!api || api->api_version != JB_CUDA_API_VERSION || api->struct_size < sizeof(jb_cuda_api)) {
    s.reason = "version mismatch: " + path + " returned no function table of API version " +
               std::to_string(JB_CUDA_API_VERSION) + "; " + how_to_replace(s);
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
  for (const Candidate& c : candidates()) out.push_back(c.path);
#endif
  return out;
}

std::string cuda_package_name() {
#if JB_HAVE_DLOPEN
  return std::string("jukebox-node-") + platform_arch() + "-cuda";
#else
  return "jukebox-node-linux-x64-cuda";
#endif
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
