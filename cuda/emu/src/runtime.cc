// The emulator's runtime (jbemu.h): device memory with a budget, junk fill and guard zones;
// streams executed lazily in stream order; events; stream capture and graph replay; kernel
// launches checked against the emulated architecture's limits; and the block executor that
// runs a block's threads as fibers (or OS threads) with checked barriers and warp collectives.
//
// Stream model. Every operation is queued on its stream and runs only when the host has to
// see its effect: a synchronising call (cudaStreamSynchronize, cudaEventSynchronize,
// cudaDeviceSynchronize, a synchronous cudaMemcpy, cudaFree) or an operation ordered after it
// (the legacy default stream orders itself with blocking streams, never with non-blocking
// ones; cudaStreamWaitEvent). So work is done as late as CUDA allows, and a copy that is not
// ordered after a kernel runs before it (JUKEBOX_CUDA_EMU_STREAMS=eager runs every operation
// at once instead). Pageable-memory rules follow the runtime's documentation: an async copy
// from pageable memory is staged at the call, one to pageable memory returns when done.
//
// Faults. A device-side fault (a bad warp mask, divergent barrier, deadlock, a write into a
// guard zone) stops the grid, prints what and where on stderr, and becomes the sticky error of
// the process, as on a GPU: every later call returns it (cudaDeviceReset clears it here).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fiber.h"
#include "jbemu/jbemu.h"
#include "symbols.h"

#if JBEMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace jbemu {

__thread Lane* t_lane = nullptr;
__thread BlockVars* t_block = nullptr;

namespace {

// =======================================================================================
// Configuration (environment, read once).

struct Config {
  bool reverse = false;
  bool os_threads = false;
  bool eager = false;
  uint64_t memory = uint64_t(2) << 30;
  // 0x7f bytes (default): floats 3.4e38 and doubles 1.4e306 (win every max, swamp every sum),
  // ints 2139062143, bools true, halves NaN; "nan": 0xff bytes (NaN floats, -1 ints; note that
  // fmaxf ignores NaN); "random": xorshift bytes; "0xNN": that byte.
  int junk = 2;  // 1: random bytes, 2: a fixed byte
  unsigned char junk_byte = 0x7f;
  int arch = 86;
  int sms = 16;
  int devices = 1;
  bool quiet = false;
  bool abort_on_fault = false;
  size_t stack = size_t(256) << 10;
};

uint64_t parse_bytes(const char* s, uint64_t fallback) {
  if (!s || !*s) return fallback;
  char* end = nullptr;
  const double v = strtod(s, &end);
  if (end == s || !(v > 0)) return fallback;
  std::string unit(end);
  for (char& c : unit) c = char(tolower(c));
  double mul = 1;
  if (unit == "k" || unit == "kb" || unit == "kib") mul = 1024.0;
  else if (unit == "m" || unit == "mb" || unit == "mib") mul = 1024.0 * 1024;
  else if (unit == "g" || unit == "gb" || unit == "gib") mul = 1024.0 * 1024 * 1024;
  else if (unit == "t" || unit == "tb" || unit == "tib") mul = 1024.0 * 1024 * 1024 * 1024;
  else if (!unit.empty() && unit != "b") return fallback;
  return uint64_t(v * mul);
}

const Config& config() {
  static const Config c = [] {
    Config k;
    auto env = [](const char* n) -> std::string {
      const char* v = getenv(n);
      return v ? v : "";
    };
    k.reverse = env("JUKEBOX_CUDA_EMU_ORDER") == "reverse";
    const std::string threads = env("JUKEBOX_CUDA_EMU_THREADS");
#if defined(__SANITIZE_THREAD__)
    k.os_threads = threads != "fibers";  // ThreadSanitizer needs real threads to see races
#else
    k.os_threads = threads == "os";
#endif
    k.eager = env("JUKEBOX_CUDA_EMU_STREAMS") == "eager";
    k.memory = parse_bytes(getenv("JUKEBOX_CUDA_EMU_MEMORY"), k.memory);
    const std::string junk = env("JUKEBOX_CUDA_EMU_JUNK");
    if (junk == "random") k.junk = 1;
    else if (junk == "nan") k.junk_byte = 0xff;
    else if (junk.size() > 2 && junk.compare(0, 2, "0x") == 0) {
      k.junk = 2;
      k.junk_byte = (unsigned char)strtoul(junk.c_str(), nullptr, 16);
    }
    const std::string arch = env("JUKEBOX_CUDA_EMU_ARCH");
    if (arch == "80" || arch == "86" || arch == "89" || arch == "90") k.arch = atoi(arch.c_str());
    if (!env("JUKEBOX_CUDA_EMU_SMS").empty()) k.sms = std::max(1, atoi(env("JUKEBOX_CUDA_EMU_SMS").c_str()));
    if (!env("JUKEBOX_CUDA_EMU_DEVICES").empty()) k.devices = std::max(0, atoi(env("JUKEBOX_CUDA_EMU_DEVICES").c_str()));
    k.quiet = env("JUKEBOX_CUDA_EMU_QUIET") == "1";
    k.abort_on_fault = env("JUKEBOX_CUDA_EMU_ABORT") == "1";
    if (!env("JUKEBOX_CUDA_EMU_STACK").empty()) k.stack = std::max<uint64_t>(64 << 10, parse_bytes(getenv("JUKEBOX_CUDA_EMU_STACK"), k.stack));
    return k;
  }();
  return c;
}

struct Arch {
  size_t smem_optin;    // largest dynamic + static shared memory per block, with the opt-in attribute
  size_t smem_per_sm;
  int threads_per_sm;
};
// The documented limits of each architecture (CUDA programming guide, compute capabilities).
Arch arch_limits(int cc) {
  switch (cc) {
    case 80: return Arch{163 * 1024, 164 * 1024, 2048};
    case 90: return Arch{227 * 1024, 228 * 1024, 2048};
    default: return Arch{99 * 1024, 100 * 1024, 1536};  // 86, 89
  }
}
constexpr size_t kStaticSharedLimit = 48 * 1024;  // static __shared__ per kernel, every arch
constexpr size_t kDefaultSharedLimit = 48 * 1024;  // static + dynamic without the opt-in attribute

// =======================================================================================
// Messages, errors.

std::recursive_mutex g_mu;  // one device: every API call and all device work under it
std::string g_last_message;
cudaError_t g_sticky = cudaSuccess;
thread_local cudaError_t t_last = cudaSuccess;
std::atomic<uint64_t> g_kernels{0};

void note(const std::string& msg) {
  g_last_message = msg;
  if (!config().quiet) fprintf(stderr, "jukebox-cuda-emu: %s\n", msg.c_str());
}

cudaError_t ret(cudaError_t e) {
  if (e != cudaSuccess) t_last = e;
  return e;
}

cudaError_t fail(cudaError_t e, const std::string& msg) {
  note(msg);
  return ret(e);
}

std::string hexp(const void* p) {
  char b[32];
  snprintf(b, sizeof b, "%p", p);
  return b;
}

// =======================================================================================
// Junk.

std::atomic<uint64_t> g_junk_seed{0x9e3779b97f4a7c15ull};

void fill_junk(void* p, size_t n) {
  if (!p || !n) return;
  const Config& c = config();
  if (c.junk == 1) {
    uint64_t x = g_junk_seed.fetch_add(0x9e3779b97f4a7c15ull) | 1;
    unsigned char* b = static_cast<unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      b[i] = (unsigned char)(x >> 24);
    }
  } else {
    memset(p, c.junk_byte, n);
  }
}

uint64_t junk64() {
  uint64_t v;
  fill_junk(&v, sizeof v);
  return v;
}

// =======================================================================================
// Device memory: a budget, 256-byte alignment, junk on allocation and free, guard zones.

constexpr size_t kGuard = 256;
constexpr unsigned char kGuardByte = 0xc7;

struct Alloc {
  char* raw;
  char* user;
  size_t bytes;
  size_t charged;
};
std::map<uintptr_t, Alloc> g_allocs;  // by user address
uint64_t g_used = 0;
std::map<uintptr_t, size_t> g_pinned;  // cudaMallocHost / cudaHostAlloc

const Alloc* find_alloc(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = g_allocs.upper_bound(a);
  if (it == g_allocs.begin()) return nullptr;
  --it;
  const Alloc& al = it->second;
  if (a >= it->first && a < it->first + std::max<size_t>(1, al.bytes)) return &al;
  return nullptr;
}

bool is_pinned(const void* p, size_t n) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = g_pinned.upper_bound(a);
  if (it == g_pinned.begin()) return false;
  --it;
  return a >= it->first && a + n <= it->first + it->second;
}

// "" when [p, p + n) lies inside one allocation, else why not.
std::string device_range_problem(const void* p, size_t n) {
  const Alloc* al = find_alloc(p);
  if (!al) return hexp(p) + " is not device memory (not from cudaMalloc, or freed)";
  const size_t off = size_t(static_cast<const char*>(p) - al->user);
  if (n > al->bytes - off)
    return std::to_string(n) + " bytes at offset " + std::to_string(off) + " run past the end of the " + std::to_string(al->bytes) +
           "-byte allocation at " + hexp(al->user);
  return "";
}

void guard_fill(Alloc& a) {
  memset(a.raw, kGuardByte, kGuard);
  memset(a.user + a.bytes, kGuardByte, a.charged - a.bytes + kGuard);
#if JBEMU_ASAN
  ASAN_POISON_MEMORY_REGION(a.raw, kGuard);
  ASAN_POISON_MEMORY_REGION(a.user + a.bytes, a.charged - a.bytes + kGuard);
#endif
}

// The first allocation whose guard zones were written, described; "" if none.
std::string check_guards() {
#if JBEMU_ASAN
  return "";  // AddressSanitizer reports the access itself, at the faulting line
#else
  for (auto& kv : g_allocs) {
    const Alloc& a = kv.second;
    for (size_t i = 0; i < kGuard; ++i)
      if ((unsigned char)a.raw[i] != kGuardByte)
        return "a write " + std::to_string(kGuard - i) + " bytes before the start of the " + std::to_string(a.bytes) + "-byte allocation at " +
               hexp(a.user) + " (out of bounds)";
    const size_t tail = a.charged - a.bytes + kGuard;
    for (size_t i = 0; i < tail; ++i)
      if ((unsigned char)a.user[a.bytes + i] != kGuardByte)
        return "a write at byte " + std::to_string(i) + " past the end of the " + std::to_string(a.bytes) + "-byte allocation at " + hexp(a.user) +
               " (out of bounds)";
  }
  return "";
#endif
}

// =======================================================================================
// Streams, events, graphs.

struct Stream;
struct Dep {
  Stream* s;
  uint64_t seq;
};
struct OpRec {
  std::function<void()> run;
  std::vector<Dep> deps;
};
struct Graph {
  std::vector<std::function<void()>> nodes;
};
struct Capture {
  cudaStreamCaptureMode mode;
  Graph* graph;
  bool invalidated = false;
  std::thread::id thread;
};
struct Stream {
  unsigned flags = 0;
  bool legacy = false;
  std::deque<OpRec> q;
  uint64_t enqueued = 0, done = 0;
  Capture* cap = nullptr;
};
struct Event {
  unsigned flags = 0;
  Stream* stream = nullptr;
  uint64_t seq = 0;
  bool recorded = false;
  bool in_capture = false;
  std::shared_ptr<std::chrono::steady_clock::time_point> time;  // set when the record runs
};
struct GraphExec {
  std::vector<std::function<void()>> nodes;
};

Stream g_legacy_stream;
std::set<Stream*> g_streams;
std::set<Event*> g_events;
std::set<Graph*> g_graphs;
std::set<GraphExec*> g_execs;

Stream* legacy() {
  g_legacy_stream.legacy = true;
  return &g_legacy_stream;
}

Stream* resolve(cudaStream_t s) {
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return legacy();
  Stream* st = reinterpret_cast<Stream*>(s);
  return g_streams.count(st) ? st : nullptr;
}

void drain(Stream* s, uint64_t upto);

void run_op(Stream* s) {
  OpRec op = std::move(s->q.front());
  s->q.pop_front();
  for (const Dep& d : op.deps) drain(d.s, d.seq);
  if (g_sticky == cudaSuccess) op.run();  // after a fault the device does nothing more
  ++s->done;
}

void drain(Stream* s, uint64_t upto) {
  while (s->done < upto && !s->q.empty()) run_op(s);
}

void drain_all() {
  drain(legacy(), legacy()->enqueued);
  for (Stream* s : g_streams) drain(s, s->enqueued);
}

bool any_capture(bool global_only) {
  for (Stream* s : g_streams)
    if (s->cap && !s->cap->invalidated) {
      if (!global_only) return true;
      if (s->cap->mode == cudaStreamCaptureModeGlobal) return true;
      if (s->cap->mode == cudaStreamCaptureModeThreadLocal && s->cap->thread == std::this_thread::get_id()) return true;
    }
  return false;
}

// A call that is not allowed while a (global or this thread's thread-local) capture runs:
// invalidates the captures and returns the error CUDA gives.
cudaError_t forbid_in_capture(const char* what) {
  if (!any_capture(true)) return cudaSuccess;
  for (Stream* s : g_streams)
    if (s->cap) s->cap->invalidated = true;
  return fail(cudaErrorStreamCaptureUnsupported,
              std::string(what) + " while a stream is being captured (cudaStreamCaptureModeGlobal): the capture is invalidated");
}

// Queues op on s in stream order (or appends it to s's capture).
cudaError_t enqueue(Stream* s, std::function<void()> run, std::vector<Dep> extra = {}) {
  if (s->cap) {
    if (s->cap->invalidated) return ret(cudaErrorStreamCaptureInvalidated);
    s->cap->graph->nodes.push_back(std::move(run));
    return cudaSuccess;
  }
  OpRec op;
  op.run = std::move(run);
  op.deps = std::move(extra);
  if (s->legacy) {
    // the legacy stream waits for all blocking streams; capturing blocking streams forbid it
    for (Stream* b : g_streams) {
      if (b->flags & cudaStreamNonBlocking) continue;
      if (b->cap && !b->cap->invalidated) {
        b->cap->invalidated = true;
        return fail(cudaErrorStreamCaptureImplicit, "work on the legacy default stream while a blocking stream is captured");
      }
      if (b->enqueued > b->done) op.deps.push_back(Dep{b, b->enqueued});
    }
  } else if (!(s->flags & cudaStreamNonBlocking)) {
    Stream* l = legacy();
    if (l->enqueued > l->done) op.deps.push_back(Dep{l, l->enqueued});
  }
  s->q.push_back(std::move(op));
  ++s->enqueued;
  if (config().eager) drain(s, s->enqueued);
  return cudaSuccess;
}

// =======================================================================================
// The block executor.

struct Abort {};

enum class St : unsigned char { Ready, Barrier, Warp, Done };

struct LaneRec : Lane {
  int index = 0;
  St st = St::Ready;
  bool started = false;
  // the collective it waits at
  Op op = Op::SyncWarp;
  unsigned mask = 0;
  uint64_t value = 0, result = 0;
  int arg = 0, width = 32;
  const char* file = "";
  int line = 0;
  int bar_kind = -1, bar_pred = 0;
  // fiber
  FiberContext ctx;
  char* stack_lo = nullptr;
  size_t stack_size = 0;
  void* asan_fake = nullptr;
  // OS thread: woken alone when its barrier or collective completes
  std::condition_variable cv;
};

struct BlockRun {
  BlockVars vars;
  int n = 0;
  LaneRec* lanes = nullptr;
  const std::function<void()>* body = nullptr;
  const std::string* kernel = nullptr;
  bool failed = false;
  std::string fault;
  cudaError_t code = cudaSuccess;
  int n_ready = 0, n_barrier = 0, n_done = 0;
  std::mutex mu;  // OS-thread mode: guards the lanes' states and the counters
};

thread_local BlockRun* t_run = nullptr;
thread_local FiberContext* t_sched = nullptr;
#if JBEMU_ASAN
thread_local const void* t_sched_stack = nullptr;
thread_local size_t t_sched_stack_size = 0;
#endif

const char* op_name(Op op) {
  switch (op) {
    case Op::ShflIdx: return "__shfl_sync";
    case Op::ShflUp: return "__shfl_up_sync";
    case Op::ShflDown: return "__shfl_down_sync";
    case Op::ShflXor: return "__shfl_xor_sync";
    case Op::Ballot: return "__ballot_sync";
    case Op::Any: return "__any_sync";
    case Op::All: return "__all_sync";
    case Op::SyncWarp: return "__syncwarp";
  }
  return "?";
}

std::string where(const char* file, int line) {
  const char* slash = strrchr(file, '/');
  return std::string(slash ? slash + 1 : file) + ":" + std::to_string(line);
}

std::string idx3(uint3 v) { return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")"; }

std::string mask_hex(unsigned m) {
  char b[16];
  snprintf(b, sizeof b, "0x%08x", m);
  return b;
}

// Records the block's first fault (caller holds b.mu in OS-thread mode).
void fault(BlockRun& b, const LaneRec* l, cudaError_t code, const std::string& what) {
  if (b.failed) return;
  b.failed = true;
  b.code = code;
  b.fault = "kernel " + *b.kernel + ": block " + idx3(b.vars.block_idx) + (l ? " thread " + idx3(l->thread_idx) : std::string()) + ": " + what;
}

void complete_warp(BlockRun& b, int base, int count, unsigned mask) {
  const LaneRec& first = b.lanes[base + __builtin_ctz(mask)];
  const Op op = first.op;
  const int width = first.width;
  if (op <= Op::ShflXor && (width < 1 || width > 32 || (width & (width - 1)))) {
    fault(b, &first, cudaErrorLaunchFailure, std::string(op_name(op)) + " at " + where(first.file, first.line) + ": width " + std::to_string(width) +
                                                " is not a power of two in [1, 32]");
    return;
  }
  unsigned ballot = 0;
  for (int j = 0; j < count; ++j)
    if ((mask >> j & 1) && b.lanes[base + j].value) ballot |= 1u << j;
  for (int j = 0; j < count; ++j) {
    if (!(mask >> j & 1)) continue;
    LaneRec& l = b.lanes[base + j];
    const int seg = j & ~(width - 1);
    int src = j;
    switch (op) {
      case Op::ShflIdx: src = seg + (l.arg & (width - 1)); break;
      case Op::ShflUp: src = (j - seg) >= l.arg ? j - l.arg : j; break;
      case Op::ShflDown: src = (j - seg) + l.arg < width ? j + l.arg : j; break;
      case Op::ShflXor: src = j ^ l.arg; if (src >= seg + width) src = j; break;
      default: break;
    }
    switch (op) {
      case Op::Ballot: l.result = ballot; break;
      case Op::Any: l.result = ballot != 0; break;
      case Op::All: l.result = ballot == (mask & (count == 32 ? 0xffffffffu : ((1u << count) - 1))); break;
      case Op::SyncWarp: l.result = 0; break;
      default:
        // a source lane outside the mask (or past the warp) gives an undefined value: junk
        l.result = (src >= 0 && src < count && (mask >> src & 1)) ? b.lanes[base + src].value : junk64();
    }
    l.st = St::Ready;
    ++b.n_ready;
    if (config().os_threads) l.cv.notify_one();
  }
}

// Completes warp w's collective if every lane its mask names has arrived at it; faults on a
// mask naming a missing or exited lane, or lanes waiting at different collectives.
bool progress_warp(BlockRun& b, int w) {
  const int base = w * 32, count = std::min(32, b.n - base);
  bool released = false;
  for (int i = 0; i < count; ++i) {
    const LaneRec& l = b.lanes[base + i];
    if (l.st != St::Warp) continue;
    const std::string at = std::string(op_name(l.op)) + "(" + mask_hex(l.mask) + ") at " + where(l.file, l.line);
    if (!(l.mask >> i & 1)) {
      fault(b, &l, cudaErrorLaunchFailure, at + ": the mask does not include the calling lane " + std::to_string(i));
      return false;
    }
    if (count < 32 && (l.mask >> count) != 0) {
      fault(b, &l, cudaErrorLaunchFailure, at + ": the mask names lanes " + std::to_string(count) + "..31, which do not exist (the block has " +
                                              std::to_string(b.n) + " threads, so warp " + std::to_string(w) + " is a partial warp of " +
                                              std::to_string(count) + " lanes)");
      return false;
    }
    bool all = true;
    for (int j = 0; j < count; ++j) {
      if (!(l.mask >> j & 1)) continue;
      const LaneRec& o = b.lanes[base + j];
      if (o.st == St::Done) {
        fault(b, &l, cudaErrorLaunchFailure, at + ": lane " + std::to_string(j) + ", named in the mask, has exited");
        return false;
      }
      if (o.st == St::Warp && (o.mask != l.mask || o.op != l.op || o.line != l.line || (o.file != l.file && strcmp(o.file, l.file) != 0))) {
        fault(b, &l, cudaErrorLaunchFailure,
              "divergent warp collective: lane " + std::to_string(i) + " waits at " + at + ", lane " + std::to_string(j) + " at " + op_name(o.op) + "(" +
                  mask_hex(o.mask) + ") at " + where(o.file, o.line));
        return false;
      }
      if (o.st != St::Warp) all = false;
    }
    if (all) {
      complete_warp(b, base, count, l.mask);
      if (b.failed) return false;
      released = true;
    }
  }
  return released;
}

bool progress_barrier(BlockRun& b) {
  if (b.n_barrier == 0 || b.n_barrier + b.n_done != b.n) return false;
  const LaneRec* first = nullptr;
  int count = 0, ands = 1, ors = 0;
  for (int i = 0; i < b.n; ++i) {
    const LaneRec& l = b.lanes[i];
    if (l.st != St::Barrier) continue;
    if (!first) first = &l;
    if (l.line != first->line || (l.file != first->file && strcmp(l.file, first->file) != 0) || l.bar_kind != first->bar_kind) {
      fault(b, &l, cudaErrorLaunchFailure, "divergent __syncthreads: thread " + idx3(first->thread_idx) + " waits at " + where(first->file, first->line) +
                                              ", this one at " + where(l.file, l.line));
      return false;
    }
    count += l.bar_pred;
    ands &= l.bar_pred;
    ors |= l.bar_pred;
  }
  if (b.n_done > 0) {
    fault(b, first, cudaErrorLaunchFailure, "__syncthreads at " + where(first->file, first->line) + " is reached by " + std::to_string(b.n_barrier) + " of " +
                                               std::to_string(b.n) + " threads; the other " + std::to_string(b.n_done) +
                                               " have exited (every thread of the block must reach it)");
    return false;
  }
  const int res = first->bar_kind == 0 ? count : first->bar_kind == 1 ? ands : ors;
  for (int i = 0; i < b.n; ++i) {
    LaneRec& l = b.lanes[i];
    l.st = St::Ready;
    l.result = uint64_t(res);
    if (config().os_threads) l.cv.notify_one();
  }
  b.n_ready += b.n_barrier;
  b.n_barrier = 0;
  return true;
}

std::string deadlock_report(const BlockRun& b) {
  std::string s = "deadlock: no thread can continue (";
  int shown = 0;
  for (int i = 0; i < b.n && shown < 4; ++i) {
    const LaneRec& l = b.lanes[i];
    if (l.st == St::Barrier) {
      s += (shown ? "; " : "") + std::string("thread ") + std::to_string(i) + " at __syncthreads " + where(l.file, l.line);
      ++shown;
    } else if (l.st == St::Warp) {
      s += (shown ? "; " : "") + std::string("thread ") + std::to_string(i) + " at " + op_name(l.op) + "(" + mask_hex(l.mask) + ") " + where(l.file, l.line);
      ++shown;
    }
  }
  return s + ")";
}

// ---- fibers

struct StackPool {
  std::vector<char*> stacks;
  size_t size = 0;
  ~StackPool() {
    for (char* s : stacks) munmap(s - getpagesize(), size + getpagesize());
  }
  char* get(int i) {
    const size_t want = config().stack;
    if (size != want) {
      for (char* s : stacks) munmap(s - getpagesize(), size + getpagesize());
      stacks.clear();
      size = want;
    }
    while (int(stacks.size()) <= i) {
      const size_t page = size_t(getpagesize());
      void* m = mmap(nullptr, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (m == MAP_FAILED) return nullptr;
      mprotect(m, page, PROT_NONE);  // a guard page below each fiber stack
      stacks.push_back(static_cast<char*>(m) + page);
    }
    return stacks[size_t(i)];
  }
};
thread_local StackPool t_stacks;

void lane_entered(LaneRec& l) {
#if JBEMU_ASAN
  __sanitizer_finish_switch_fiber(l.asan_fake, &t_sched_stack, &t_sched_stack_size);
#else
  (void)l;
#endif
}

void lane_to_scheduler(LaneRec& l, bool exiting) {
#if JBEMU_ASAN
  __sanitizer_start_switch_fiber(exiting ? nullptr : &l.asan_fake, t_sched_stack, t_sched_stack_size);
#else
  (void)exiting;
#endif
  fiber_switch(l.ctx, *t_sched);
  lane_entered(l);
}

void run_body(BlockRun& b, LaneRec& l) {
  try {
    (*b.body)();
  } catch (const Abort&) {
  } catch (const std::exception& e) {
    fault(b, &l, cudaErrorLaunchFailure, std::string("exception in device code: ") + e.what());
  } catch (...) {
    fault(b, &l, cudaErrorLaunchFailure, "exception in device code");
  }
}

void fiber_main(void* arg) {
  LaneRec& l = *static_cast<LaneRec*>(arg);
  lane_entered(l);
  BlockRun& b = *t_run;
  run_body(b, l);
  l.st = St::Done;
  --b.n_ready;
  ++b.n_done;
  lane_to_scheduler(l, true);
  __builtin_trap();  // never resumed
}

void resume(LaneRec& l) {
  t_lane = &l;
  l.started = true;
#if JBEMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, l.stack_lo, l.stack_size);
  FiberContext sched;
  t_sched = &sched;
  fiber_switch(sched, l.ctx);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  FiberContext sched;
  t_sched = &sched;
  fiber_switch(sched, l.ctx);
#endif
  t_lane = nullptr;
}

void run_block_fibers(BlockRun& b) {
  for (int i = 0; i < b.n; ++i) {
    LaneRec& l = b.lanes[i];
    l.stack_lo = t_stacks.get(i);
    l.stack_size = t_stacks.size;
    if (!l.stack_lo) {
      fault(b, nullptr, cudaErrorLaunchOutOfResources, "could not map a fiber stack");
      return;
    }
    fiber_make(l.ctx, l.stack_lo, l.stack_size, &fiber_main, &l);
  }
  const bool rev = config().reverse;
  auto sweep = [&](bool unwinding) {
    for (int k = 0; k < b.n; ++k) {
      LaneRec& l = b.lanes[rev ? b.n - 1 - k : k];
      if (unwinding) {
        if (l.st == St::Done) continue;
        if (!l.started) {  // never ran: nothing to unwind
          l.st = St::Done;
          continue;
        }
        resume(l);  // it sees the fault at its collective and unwinds (Abort)
      } else if (l.st == St::Ready) {
        if (b.failed) return;
        resume(l);
      }
    }
  };
  for (;;) {
    sweep(false);
    if (b.failed) {
      sweep(true);
      return;
    }
    if (b.n_done == b.n) return;
    bool released = false;
    for (int w = 0; w * 32 < b.n && !b.failed; ++w) released |= progress_warp(b, w);
    if (!b.failed) released |= progress_barrier(b);
    if (!b.failed && !released) fault(b, nullptr, cudaErrorLaunchTimeout, deadlock_report(b));
  }
}

// ---- OS threads

// After lane l arrived at a collective (warp_op), a barrier, or exited (both checks), with
// b.mu held: complete what it completes, detect a fault or a deadlock, and wake whom that
// concerns. A group completes on its last arrival, so looking at l's warp and the barrier
// is enough: when every lane waits and this released nothing, nothing ever will.
void os_progress(BlockRun& b, LaneRec& l, bool warp, bool barrier) {
  bool released = false;
  if (warp && !b.failed) released |= progress_warp(b, l.index / 32);
  if (barrier && !b.failed) released |= progress_barrier(b);
  if (!b.failed && !released && b.n_ready == 0 && b.n_done < b.n) fault(b, nullptr, cudaErrorLaunchTimeout, deadlock_report(b));
  if (b.failed)
    for (int i = 0; i < b.n; ++i) b.lanes[i].cv.notify_one();
}

// The block's threads are the pool's first n threads. Each takes the block, then waits until
// all n have taken it, and only then runs the kernel: so the pool's mutex orders every
// pickup before any kernel code, and no lock of the emulator's orders one thread's kernel
// code after another's (a thread that picked the block up after another had finished would
// "happen after" it for ThreadSanitizer, hiding a missing barrier).
struct OsPool {
  std::mutex mu, finish_mu;
  std::condition_variable start, all_started, finished;
  std::vector<std::thread> threads;
  BlockRun* job = nullptr;
  uint64_t generation = 0;
  int remaining = 0, started = 0;

  void worker(int idx) {
    uint64_t seen = 0;
    for (;;) {
      BlockRun* b;
      {
        std::unique_lock<std::mutex> lock(mu);
        start.wait(lock, [&] { return generation != seen; });
        seen = generation;
        b = job;
        if (!b || idx >= b->n) continue;
        const uint64_t gen = generation;
        if (++started == b->n) all_started.notify_all();
        else all_started.wait(lock, [&] { return started == b->n || generation != gen; });
      }
      LaneRec& l = b->lanes[idx];
      t_lane = &l;
      t_block = &b->vars;
      t_run = b;
      l.started = true;
      run_body(*b, l);
      {
        std::lock_guard<std::mutex> lock(b->mu);
        l.st = St::Done;
        --b->n_ready;
        ++b->n_done;
        os_progress(*b, l, true, true);
      }
      t_lane = nullptr;
      t_block = nullptr;
      t_run = nullptr;
      std::lock_guard<std::mutex> lock(finish_mu);  // not mu: a late starter must not "happen after" this
      if (--remaining == 0) finished.notify_all();
    }
  }

  void run(BlockRun& b) {
    std::unique_lock<std::mutex> lock(mu);
    while (int(threads.size()) < b.n) {
      const int idx = int(threads.size());
      threads.emplace_back([this, idx] { worker(idx); });
      threads.back().detach();
    }
    job = &b;
    {
      std::lock_guard<std::mutex> done(finish_mu);
      remaining = b.n;
    }
    started = 0;
    ++generation;
    start.notify_all();
    lock.unlock();
    std::unique_lock<std::mutex> done(finish_mu);
    finished.wait(done, [&] { return remaining == 0; });
    done.unlock();
    lock.lock();
    job = nullptr;
  }
};

OsPool& os_pool() {
  static OsPool* p = new OsPool;  // never destroyed: its threads wait for work until exit
  return *p;
}

// ---- arrival at a barrier or collective, both modes

// `lock` holds b.mu in OS-thread mode (taken before the lane's state changed: the arrival,
// its progress and the wait are one critical section, so no other lane sees the counters
// between them); it is empty in fiber mode.
void wait_released(BlockRun& b, LaneRec& l, std::unique_lock<std::mutex>& lock) {
  if (!config().os_threads) {
    lane_to_scheduler(l, false);
    if (b.failed) throw Abort();
    return;
  }
  os_progress(b, l, l.st == St::Warp, l.st == St::Barrier);
  l.cv.wait(lock, [&] { return l.st == St::Ready || b.failed; });
  if (b.failed) throw Abort();
}

LaneRec& me(const char* what) {
  if (!t_run || !t_lane) {
    fprintf(stderr, "jukebox-cuda-emu: %s called outside a kernel\n", what);
    abort();
  }
  return *static_cast<LaneRec*>(t_lane);
}

void arrive_barrier(int kind, int pred, const char* file, int line) {
  LaneRec& l = me("__syncthreads");
  BlockRun& b = *t_run;
  std::unique_lock<std::mutex> lock(b.mu, std::defer_lock);
  if (config().os_threads) lock.lock();
  l.file = file;
  l.line = line;
  l.bar_kind = kind;
  l.bar_pred = pred;
  l.st = St::Barrier;
  --b.n_ready;
  ++b.n_barrier;
  wait_released(b, l, lock);
}

}  // namespace

// =======================================================================================
// Device-side entry points (jbemu.h).

void syncthreads(const char* file, int line) { arrive_barrier(0, 0, file, line); }

int syncthreads_reduce(int kind, int pred, const char* file, int line) {
  arrive_barrier(kind, pred ? 1 : 0, file, line);
  return int(static_cast<LaneRec*>(t_lane)->result);
}

uint64_t warp_collective(Op op, const char* file, int line, unsigned mask, uint64_t value, int arg, int width) {
  LaneRec& l = me(op_name(op));
  BlockRun& b = *t_run;
  std::unique_lock<std::mutex> lock(b.mu, std::defer_lock);
  if (config().os_threads) lock.lock();
  l.op = op;
  l.file = file;
  l.line = line;
  l.mask = mask;
  l.value = value;
  l.arg = arg;
  l.width = width;
  l.st = St::Warp;
  --b.n_ready;
  wait_released(b, l, lock);
  return l.result;
}

void syncwarp(const char* file, int line, unsigned mask) { (void)warp_collective(Op::SyncWarp, file, line, mask, 0, 0, 32); }

unsigned activemask() {
  LaneRec& l = me("__activemask");
  BlockRun& b = *t_run;
  const int base = l.index & ~31, count = std::min(32, b.n - base);
  unsigned m = 0;
  for (int j = 0; j < count; ++j)
    if (b.lanes[base + j].st != St::Done) m |= 1u << j;
  return m;
}

void device_fault(const char* file, int line, const char* what) {
  LaneRec& l = me("device_fault");
  BlockRun& b = *t_run;
  {
    std::unique_lock<std::mutex> lock(b.mu, std::defer_lock);
    if (config().os_threads) lock.lock();
    fault(b, &l, cudaErrorLaunchFailure, std::string(what) + " at " + where(file, line));
  }
  throw Abort();
}

long long clock_ticks() {
  return (long long)std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool os_threads() { return config().os_threads; }
bool reverse_order() { return config().reverse; }
const char* last_message() { return g_last_message.c_str(); }
uint64_t kernels_run() { return g_kernels.load(); }

namespace {

// =======================================================================================
// Kernels.

struct FuncAttr {
  int max_dynamic = -1;  // -1: not set (48 KiB - static)
};
std::map<const void*, FuncAttr> g_func_attrs;

// Runs a whole grid (called when its stream reaches it).
void execute_kernel(const KernelSite& site, dim3 grid, dim3 block, size_t smem, const std::function<void()>& body) {
  g_kernels.fetch_add(1);
  const KernelSymbols& ks = kernel_symbols(site.fn, site.name);
  std::vector<std::pair<char*, size_t>> statics = ks.statics;
  if (!ks.known) {
    const auto whole = shared_section_of(site.fn);
    if (whole.first) statics.push_back(whole);
  }
  const int n = int(block.x * block.y * block.z);
  std::vector<unsigned char> dyn(smem + 16);
  unsigned char* dyn_aligned = reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(dyn.data()) + 15) & ~uintptr_t(15));
  std::vector<LaneRec> lanes(static_cast<size_t>(n));
  const uint64_t blocks = uint64_t(grid.x) * grid.y * grid.z;
  const bool rev = config().reverse;
  for (uint64_t k = 0; k < blocks; ++k) {
    const uint64_t bi = rev ? blocks - 1 - k : k;
    BlockRun b;
    b.vars.block_idx = uint3{unsigned(bi % grid.x), unsigned((bi / grid.x) % grid.y), unsigned(bi / (uint64_t(grid.x) * grid.y))};
    b.vars.block_dim = block;
    b.vars.grid_dim = grid;
    b.vars.dynamic_shared = smem ? dyn_aligned : nullptr;
    b.n = n;
    b.body = &body;
    b.kernel = &ks.name;
    b.n_ready = n;
    for (auto& s : statics) fill_junk(s.first, s.second);
    if (smem) fill_junk(dyn_aligned, smem);
    for (int i = 0; i < n; ++i) {
      LaneRec& l = lanes[size_t(i)];
      l.index = i;
      l.thread_idx = uint3{unsigned(i % block.x), unsigned((i / block.x) % block.y), unsigned(i / (block.x * block.y))};
      l.st = St::Ready;
      l.started = false;
      l.asan_fake = nullptr;
    }
    b.lanes = lanes.data();
    BlockRun* saved_run = t_run;
    BlockVars* saved_block = t_block;
    Lane* saved_lane = t_lane;
    if (config().os_threads) {
      os_pool().run(b);
    } else {
      t_run = &b;
      t_block = &b.vars;
      run_block_fibers(b);
    }
    t_run = saved_run;
    t_block = saved_block;
    t_lane = saved_lane;
    if (b.failed) {
      g_sticky = b.code;
      note(b.fault + " (launched at " + where(site.file, site.line) + ")");
      if (config().abort_on_fault) abort();
      return;
    }
  }
  const std::string oob = check_guards();
  if (!oob.empty()) {
    g_sticky = cudaErrorIllegalAddress;
    note("kernel " + ks.name + " (launched at " + where(site.file, site.line) + "): " + oob);
    if (config().abort_on_fault) abort();
  }
}

}  // namespace

cudaError_t enqueue_kernel(const KernelSite& site, dim3 grid, dim3 block, size_t smem, cudaStream_t s, std::function<void()> body) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  if (g_sticky) return ret(g_sticky);
  const KernelSymbols& ks = kernel_symbols(site.fn, site.name);
  const std::string at = "launch of " + ks.name + " at " + where(site.file, site.line) + ": ";
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (block.x == 0 || block.y == 0 || block.z == 0 || block.x > 1024 || block.y > 1024 || block.z > 64 || threads > 1024)
    return fail(cudaErrorInvalidConfiguration, at + "block " + idx3(block) + " is outside the limits (at most 1024 threads, dims <= (1024, 1024, 64))");
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535)
    return fail(cudaErrorInvalidConfiguration, at + "grid " + idx3(grid) + " is outside the limits (x in [1, 2^31-1], y and z in [1, 65535])");
  const Arch a = arch_limits(config().arch);
  if (ks.static_bytes > kStaticSharedLimit)
    return fail(cudaErrorInvalidValue, at + std::to_string(ks.static_bytes) + " bytes of static __shared__ memory; the limit is 49152 (48 KiB) on every "
                                                                              "architecture (ptxas refuses it): use dynamic shared memory and "
                                                                              "cudaFuncAttributeMaxDynamicSharedMemorySize");
  const FuncAttr fa = g_func_attrs.count(site.fn) ? g_func_attrs[site.fn] : FuncAttr{};
  const size_t dyn_limit = fa.max_dynamic >= 0 ? size_t(fa.max_dynamic) : kDefaultSharedLimit - std::min(kDefaultSharedLimit, ks.static_bytes);
  if (smem > dyn_limit)
    return fail(cudaErrorInvalidValue, at + std::to_string(smem) + " bytes of dynamic shared memory exceed the kernel's limit of " +
                                           std::to_string(dyn_limit) +
                                           (fa.max_dynamic >= 0 ? std::string(" (its cudaFuncAttributeMaxDynamicSharedMemorySize)")
                                                                : std::string(" (48 KiB less its static shared memory; more needs "
                                                                              "cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize))")));
  if (smem + ks.static_bytes > a.smem_optin)
    return fail(cudaErrorInvalidValue, at + std::to_string(smem + ks.static_bytes) + " bytes of shared memory exceed sm_" + std::to_string(config().arch) +
                                           "'s " + std::to_string(a.smem_optin) + " per block");
  Stream* st = resolve(s);
  if (!st) return fail(cudaErrorInvalidResourceHandle, at + "unknown stream " + hexp(s));
  if (st->legacy) {
    const cudaError_t e = forbid_in_capture("a kernel launch on the legacy default stream");
    if (e) return e;
  }
  KernelSite site_copy = site;
  auto shared_body = std::make_shared<std::function<void()>>(std::move(body));
  return enqueue(st, [site_copy, grid, block, smem, shared_body] { execute_kernel(site_copy, grid, block, smem, *shared_body); });
}

}  // namespace jbemu

// =======================================================================================
// The runtime API.

using namespace jbemu;

#define LOCK std::lock_guard<std::recursive_mutex> lock_(g_mu)
#define STICKY \
  if (g_sticky) return ret(g_sticky)

cudaError_t cudaGetLastError(void) {
  LOCK;
  if (g_sticky) return g_sticky;
  const cudaError_t e = t_last;
  t_last = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError(void) {
  LOCK;
  return g_sticky ? g_sticky : t_last;
}

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
#define N(x) \
  case x: return #x;
    N(cudaSuccess) N(cudaErrorInvalidValue) N(cudaErrorMemoryAllocation) N(cudaErrorInitializationError) N(cudaErrorCudartUnloading)
    N(cudaErrorInvalidConfiguration) N(cudaErrorInvalidDevicePointer) N(cudaErrorInvalidMemcpyDirection) N(cudaErrorInsufficientDriver)
    N(cudaErrorCallRequiresNewerDriver) N(cudaErrorInvalidResourceHandle) N(cudaErrorNoDevice) N(cudaErrorInvalidDevice) N(cudaErrorDeviceNotLicensed)
    N(cudaErrorNoKernelImageForDevice) N(cudaErrorUnsupportedPtxVersion) N(cudaErrorInvalidKernelImage) N(cudaErrorNotReady) N(cudaErrorIllegalAddress)
    N(cudaErrorLaunchOutOfResources) N(cudaErrorLaunchTimeout) N(cudaErrorIllegalInstruction) N(cudaErrorMisalignedAddress) N(cudaErrorLaunchFailure)
    N(cudaErrorNotSupported) N(cudaErrorSystemDriverMismatch) N(cudaErrorCompatNotSupportedOnDevice) N(cudaErrorStreamCaptureUnsupported)
    N(cudaErrorStreamCaptureInvalidated) N(cudaErrorStreamCaptureImplicit) N(cudaErrorDevicesUnavailable) N(cudaErrorUnknown)
#undef N
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchTimeout: return "the launch timed out and was terminated";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureImplicit: return "operation would make the legacy stream depend on a capturing blocking stream";
    default: return cudaGetErrorName(e);
  }
}

cudaError_t cudaRuntimeGetVersion(int* v) {
  if (!v) return ret(cudaErrorInvalidValue);
  *v = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* v) {
  if (!v) return ret(cudaErrorInvalidValue);
  *v = CUDART_VERSION;  // the emulator is its own driver
  return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int* n) {
  if (!n) return ret(cudaErrorInvalidValue);
  *n = config().devices > 0 ? 1 : 0;
  return *n ? cudaSuccess : ret(cudaErrorNoDevice);
}

namespace {
thread_local int t_device = 0;
cudaError_t check_device(int d) {
  if (config().devices == 0) return ret(cudaErrorNoDevice);
  if (d != 0) return ret(cudaErrorInvalidDevice);
  return cudaSuccess;
}
}  // namespace

cudaError_t cudaGetDevice(int* d) {
  if (!d) return ret(cudaErrorInvalidValue);
  if (config().devices == 0) return ret(cudaErrorNoDevice);
  *d = t_device;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int d) {
  const cudaError_t e = check_device(d);
  if (e) return e;
  t_device = d;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
  if (!p) return ret(cudaErrorInvalidValue);
  const cudaError_t e = check_device(d);
  if (e) return e;
  const Config& c = config();
  const Arch a = arch_limits(c.arch);
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "cuda (emulated on the CPU), sm_%d limits", c.arch);
  p->totalGlobalMem = size_t(c.memory);
  p->sharedMemPerBlock = kDefaultSharedLimit;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->memPitch = size_t(1) << 31;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024;
  p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 0x7fffffff;
  p->maxGridSize[1] = 65535;
  p->maxGridSize[2] = 65535;
  p->totalConstMem = 65536;
  p->major = c.arch / 10;
  p->minor = c.arch % 10;
  p->textureAlignment = 512;
  p->multiProcessorCount = c.sms;
  p->canMapHostMemory = 1;
  p->concurrentKernels = 1;
  p->l2CacheSize = 40 << 20;
  p->maxThreadsPerMultiProcessor = a.threads_per_sm;
  p->sharedMemPerMultiprocessor = a.smem_per_sm;
  p->regsPerMultiprocessor = 65536;
  p->sharedMemPerBlockOptin = a.smem_optin;
  p->memoryBusWidth = 0;
  p->asyncEngineCount = 1;
  p->unifiedAddressing = 1;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr attr, int d) {
  if (!v) return ret(cudaErrorInvalidValue);
  cudaDeviceProp p;
  const cudaError_t e = cudaGetDeviceProperties(&p, d);
  if (e) return e;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *v = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxBlockDimX: *v = p.maxThreadsDim[0]; break;
    case cudaDevAttrMaxBlockDimY: *v = p.maxThreadsDim[1]; break;
    case cudaDevAttrMaxBlockDimZ: *v = p.maxThreadsDim[2]; break;
    case cudaDevAttrMaxGridDimX: *v = p.maxGridSize[0]; break;
    case cudaDevAttrMaxGridDimY: *v = p.maxGridSize[1]; break;
    case cudaDevAttrMaxGridDimZ: *v = p.maxGridSize[2]; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *v = int(p.sharedMemPerBlock); break;
    case cudaDevAttrWarpSize: *v = 32; break;
    case cudaDevAttrMultiProcessorCount: *v = p.multiProcessorCount; break;
    case cudaDevAttrComputeCapabilityMajor: *v = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *v = p.minor; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *v = int(p.sharedMemPerMultiprocessor); break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = int(p.sharedMemPerBlockOptin); break;
    default: return ret(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
  LOCK;
  STICKY;
  const cudaError_t e = forbid_in_capture("cudaDeviceSynchronize");
  if (e) return e;
  drain_all();
  return g_sticky ? ret(g_sticky) : cudaSuccess;
}

cudaError_t cudaDeviceReset(void) {
  // Not what a GPU allows after a fault (the process must end), but what tests of the
  // emulator need: drop all pending work, free all memory, clear the sticky error.
  LOCK;
  g_legacy_stream.q.clear();
  g_legacy_stream.done = g_legacy_stream.enqueued;
  for (Stream* s : g_streams) {
    s->q.clear();
    s->done = s->enqueued;
  }
  for (auto& kv : g_allocs) free(kv.second.raw);
  g_allocs.clear();
  g_used = 0;
  g_func_attrs.clear();
  g_sticky = cudaSuccess;
  t_last = cudaSuccess;
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  LOCK;
  STICKY;
  if (config().devices == 0) return ret(cudaErrorNoDevice);
  const uint64_t total = config().memory;
  if (free_bytes) *free_bytes = size_t(total > g_used ? total - g_used : 0);
  if (total_bytes) *total_bytes = size_t(total);
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  LOCK;
  if (!p) return ret(cudaErrorInvalidValue);
  *p = nullptr;
  STICKY;
  if (config().devices == 0) return ret(cudaErrorNoDevice);
  const cudaError_t ce = forbid_in_capture("cudaMalloc");
  if (ce) return ce;
  if (bytes == 0) return cudaSuccess;
  const size_t charged = (bytes + 255) & ~size_t(255);
  if (charged < bytes || charged > config().memory - std::min<uint64_t>(config().memory, g_used)) return ret(cudaErrorMemoryAllocation);
  char* raw = static_cast<char*>(aligned_alloc(256, kGuard + charged + kGuard));
  if (!raw) return ret(cudaErrorMemoryAllocation);
  Alloc a{raw, raw + kGuard, bytes, charged};
  fill_junk(a.user, bytes);
  guard_fill(a);
  g_allocs[reinterpret_cast<uintptr_t>(a.user)] = a;
  g_used += charged;
  *p = a.user;
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  LOCK;
  if (!p) return cudaSuccess;
  const cudaError_t ce = forbid_in_capture("cudaFree");
  if (ce) return ce;
  drain_all();  // cudaFree waits for the device, so queued work still sees the memory
  auto it = g_allocs.find(reinterpret_cast<uintptr_t>(p));
  if (it == g_allocs.end()) return fail(cudaErrorInvalidValue, "cudaFree(" + hexp(p) + "): not a pointer from cudaMalloc (or already freed)");
  Alloc a = it->second;
  g_allocs.erase(it);
  g_used -= a.charged;
#if JBEMU_ASAN
  ASAN_UNPOISON_MEMORY_REGION(a.raw, kGuard + a.charged + kGuard);
#endif
  fill_junk(a.user, a.bytes);  // a use after free reads junk (or ASan reports it)
  free(a.raw);
  return g_sticky ? ret(g_sticky) : cudaSuccess;
}

cudaError_t cudaMallocHost(void** p, size_t bytes) {
  LOCK;
  if (!p) return ret(cudaErrorInvalidValue);
  *p = malloc(bytes ? bytes : 1);
  if (!*p) return ret(cudaErrorMemoryAllocation);
  g_pinned[reinterpret_cast<uintptr_t>(*p)] = bytes;
  return cudaSuccess;
}

cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned int) { return cudaMallocHost(p, bytes); }

cudaError_t cudaFreeHost(void* p) {
  LOCK;
  if (!p) return cudaSuccess;
  drain_all();
  if (!g_pinned.erase(reinterpret_cast<uintptr_t>(p))) return ret(cudaErrorInvalidValue);
  free(p);
  return cudaSuccess;
}

namespace {

// Checks a copy's pointers against its kind; "" when valid.
std::string copy_problem(void* dst, const void* src, size_t n, cudaMemcpyKind& kind) {
  if (n == 0) return "";
  const bool dd = find_alloc(dst) != nullptr, sd = find_alloc(src) != nullptr;
  if (kind == cudaMemcpyDefault) kind = dd ? (sd ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice) : (sd ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  const bool want_dd = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool want_sd = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  std::string p;
  if (want_dd) p = device_range_problem(dst, n);
  else if (dd) p = "the destination " + hexp(dst) + " is device memory but the copy's kind says host";
  if (!p.empty()) return "destination: " + p;
  if (want_sd) p = device_range_problem(src, n);
  else if (sd) p = "the source " + hexp(src) + " is device memory but the copy's kind says host";
  if (!p.empty()) return "source: " + p;
  if (!dst || !src) return "null pointer";
  return "";
}

}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  LOCK;
  STICKY;
  const std::string p = copy_problem(dst, src, bytes, kind);
  if (!p.empty()) return fail(cudaErrorInvalidValue, "cudaMemcpy of " + std::to_string(bytes) + " bytes: " + p);
  const cudaError_t ce = forbid_in_capture("cudaMemcpy (synchronous)");
  if (ce) return ce;
  // A synchronous copy is on the legacy stream: after its work and the blocking streams'.
  Stream* l = legacy();
  for (Stream* s : g_streams)
    if (!(s->flags & cudaStreamNonBlocking)) drain(s, s->enqueued);
  drain(l, l->enqueued);
  if (g_sticky) return ret(g_sticky);
  if (bytes) memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
  LOCK;
  STICKY;
  const std::string p = copy_problem(dst, src, bytes, kind);
  if (!p.empty()) return fail(cudaErrorInvalidValue, "cudaMemcpyAsync of " + std::to_string(bytes) + " bytes: " + p);
  Stream* st = resolve(s);
  if (!st) return ret(cudaErrorInvalidResourceHandle);
  if (bytes == 0) return cudaSuccess;
  if (st->legacy) {
    const cudaError_t ce = forbid_in_capture("cudaMemcpyAsync on the legacy default stream");
    if (ce) return ce;
  }
  const bool capturing = st->cap != nullptr;
  if (kind == cudaMemcpyHostToDevice && !capturing && !is_pinned(src, bytes)) {
    // pageable source: staged now (the caller may reuse it at once), copied in stream order
    drain(st, st->enqueued);
    auto staged = std::make_shared<std::vector<char>>(static_cast<const char*>(src), static_cast<const char*>(src) + bytes);
    return enqueue(st, [dst, staged] { memcpy(dst, staged->data(), staged->size()); });
  }
  const cudaError_t e = enqueue(st, [dst, src, bytes] { memmove(dst, src, bytes); });
  if (e) return e;
  if (!capturing && (kind == cudaMemcpyHostToHost || (kind == cudaMemcpyDeviceToHost && !is_pinned(dst, bytes)))) {
    drain(st, st->enqueued);  // to pageable memory: returns when the copy is done
    if (g_sticky) return ret(g_sticky);
  }
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t s) {
  LOCK;
  STICKY;
  if (bytes == 0) return cudaSuccess;
  const std::string p = device_range_problem(ptr, bytes);
  if (!p.empty()) return fail(cudaErrorInvalidValue, "cudaMemset of " + std::to_string(bytes) + " bytes: " + p);
  Stream* st = resolve(s);
  if (!st) return ret(cudaErrorInvalidResourceHandle);
  if (st->legacy) {
    const cudaError_t ce = forbid_in_capture("cudaMemset on the legacy default stream");
    if (ce) return ce;
  }
  return enqueue(st, [ptr, value, bytes] { memset(ptr, value, bytes); });
}

cudaError_t cudaMemset(void* p, int value, size_t bytes) { return cudaMemsetAsync(p, value, bytes, nullptr); }

cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int flags) {
  LOCK;
  if (!s) return ret(cudaErrorInvalidValue);
  STICKY;
  Stream* st = new Stream;
  st->flags = flags;
  g_streams.insert(st);
  *s = reinterpret_cast<cudaStream_t>(st);
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t s) {
  LOCK;
  Stream* st = resolve(s);
  if (!st || st->legacy) return ret(cudaErrorInvalidResourceHandle);
  drain(st, st->enqueued);  // queued work still completes
  if (st->cap) {
    delete st->cap->graph;
    delete st->cap;
  }
  g_streams.erase(st);
  delete st;
  return g_sticky ? ret(g_sticky) : cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  LOCK;
  STICKY;
  Stream* st = resolve(s);
  if (!st) return ret(cudaErrorInvalidResourceHandle);
  if (st->cap) {
    st->cap->invalidated = true;
    return fail(cudaErrorStreamCaptureUnsupported, "cudaStreamSynchronize on a stream that is being captured");
  }
  if (st->legacy) {
    const cudaError_t ce = forbid_in_capture("cudaStreamSynchronize on the legacy default stream");
    if (ce) return ce;
    for (Stream* b : g_streams)
      if (!(b->flags & cudaStreamNonBlocking)) drain(b, b->enqueued);
  }
  drain(st, st->enqueued);
  return g_sticky ? ret(g_sticky) : cudaSuccess;
}

cudaError_t cudaStreamQuery(cudaStream_t s) {
  LOCK;
  STICKY;
  Stream* st = resolve(s);
  if (!st) return ret(cudaErrorInvalidResourceHandle);
  if (st->cap) return fail(cudaErrorStreamCaptureUnsupported, "cudaStreamQuery on a stream that is being captured");
  return st->done == st->enqueued ? cudaSuccess : cudaErrorNotReady;  // pending work runs when waited for
}

cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int) {
  LOCK;
  STICKY;
  Stream* st = resolve(s);
  Event* ev = reinterpret_cast<Event*>(e);
  if (!st || !g_events.count(ev)) return ret(cudaErrorInvalidResourceHandle);
  if (!ev->recorded) return cudaSuccess;
  if (st->cap) {
    if (!ev->in_capture) drain(ev->stream, ev->seq);  // outside work the graph is ordered after
    return cudaSuccess;
  }
  std::vector<Dep> deps;
  if (!ev->in_capture) deps.push_back(Dep{ev->stream, ev->seq});
  return enqueue(st, [] {}, std::move(deps));
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
  LOCK;
  STICKY;
  Stream* st = resolve(s);
  if (!st) return ret(cudaErrorInvalidResourceHandle);
  if (st->legacy) return fail(cudaErrorStreamCaptureUnsupported, "the legacy default stream cannot be captured");
  if (st->cap) return fail(cudaErrorIllegalInstruction, "cudaStreamBeginCapture: the stream is already being captured");
  st->cap = new Capture{mode, new Graph, false, std::this_thread::get_id()};
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* g) {
  LOCK;
  Stream* st = resolve(s);
  if (!st || !g) return ret(cudaErrorInvalidValue);
  if (!st->cap) return fail(cudaErrorIllegalInstruction, "cudaStreamEndCapture: the stream is not being captured");
  Capture* c = st->cap;
  st->cap = nullptr;
  *g = nullptr;
  if (c->invalidated) {
    delete c->graph;
    delete c;
    return ret(cudaErrorStreamCaptureInvalidated);
  }
  g_graphs.insert(c->graph);
  *g = reinterpret_cast<cudaGraph_t>(c->graph);
  delete c;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status) {
  LOCK;
  Stream* st = resolve(s);
  if (!st || !status) return ret(cudaErrorInvalidValue);
  *status = !st->cap ? cudaStreamCaptureStatusNone : st->cap->invalidated ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int flags) {
  LOCK;
  if (!e) return ret(cudaErrorInvalidValue);
  Event* ev = new Event;
  ev->flags = flags;
  g_events.insert(ev);
  *e = reinterpret_cast<cudaEvent_t>(ev);
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t e) {
  LOCK;
  Event* ev = reinterpret_cast<Event*>(e);
  if (!g_events.erase(ev)) return ret(cudaErrorInvalidResourceHandle);
  delete ev;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  LOCK;
  STICKY;
  Event* ev = reinterpret_cast<Event*>(e);
  Stream* st = resolve(s);
  if (!st || !g_events.count(ev)) return ret(cudaErrorInvalidResourceHandle);
  if (st->legacy) {
    const cudaError_t ce = forbid_in_capture("cudaEventRecord on the legacy default stream");
    if (ce) return ce;
  }
  ev->time = nullptr;
  Event* target = ev;
  const cudaError_t r = enqueue(st, [target] {
    if (g_events.count(target)) target->time = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
  });
  if (r) return r;
  ev->recorded = true;
  ev->in_capture = st->cap != nullptr;
  ev->stream = st;
  ev->seq = st->enqueued;
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  LOCK;
  STICKY;
  Event* ev = reinterpret_cast<Event*>(e);
  if (!g_events.count(ev)) return ret(cudaErrorInvalidResourceHandle);
  if (!ev->recorded) return cudaSuccess;
  if (ev->in_capture) return fail(cudaErrorStreamCaptureUnsupported, "cudaEventSynchronize on an event recorded in a capture");
  drain(ev->stream, ev->seq);
  return g_sticky ? ret(g_sticky) : cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t e) {
  LOCK;
  STICKY;
  Event* ev = reinterpret_cast<Event*>(e);
  if (!g_events.count(ev)) return ret(cudaErrorInvalidResourceHandle);
  if (!ev->recorded) return cudaSuccess;
  return ev->time ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  LOCK;
  STICKY;
  Event* a = reinterpret_cast<Event*>(start);
  Event* b = reinterpret_cast<Event*>(end);
  if (!ms || !g_events.count(a) || !g_events.count(b)) return ret(cudaErrorInvalidResourceHandle);
  if ((a->flags | b->flags) & cudaEventDisableTiming) return ret(cudaErrorInvalidResourceHandle);
  if (!a->time || !b->time) return ret(cudaErrorNotReady);
  *ms = float(std::chrono::duration<double, std::milli>(*b->time - *a->time).count());
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t g, unsigned long long) {
  LOCK;
  Graph* gr = reinterpret_cast<Graph*>(g);
  if (!exec || !g_graphs.count(gr)) return ret(cudaErrorInvalidValue);
  GraphExec* x = new GraphExec;
  x->nodes = gr->nodes;  // an executable graph is a copy: later changes to g do not reach it
  g_execs.insert(x);
  *exec = reinterpret_cast<cudaGraphExec_t>(x);
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
  LOCK;
  STICKY;
  GraphExec* x = reinterpret_cast<GraphExec*>(exec);
  Stream* st = resolve(s);
  if (!st || !g_execs.count(x)) return ret(cudaErrorInvalidResourceHandle);
  if (st->legacy) {
    const cudaError_t ce = forbid_in_capture("cudaGraphLaunch on the legacy default stream");
    if (ce) return ce;
  }
  for (const auto& node : x->nodes) {
    const cudaError_t e = enqueue(st, node);
    if (e) return e;
  }
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  LOCK;
  GraphExec* x = reinterpret_cast<GraphExec*>(exec);
  if (!g_execs.erase(x)) return ret(cudaErrorInvalidResourceHandle);
  delete x;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t g) {
  LOCK;
  Graph* gr = reinterpret_cast<Graph*>(g);
  if (!g_graphs.erase(gr)) return ret(cudaErrorInvalidResourceHandle);
  delete gr;
  return cudaSuccess;
}

cudaError_t cudaGraphGetNodes(cudaGraph_t g, cudaGraphNode_t* nodes, size_t* count) {
  LOCK;
  Graph* gr = reinterpret_cast<Graph*>(g);
  if (!count || !g_graphs.count(gr)) return ret(cudaErrorInvalidValue);
  if (nodes) return ret(cudaErrorNotSupported);
  *count = gr->nodes.size();
  return cudaSuccess;
}

cudaError_t jbemu_func_set_attribute(const void* fn, cudaFuncAttribute attr, int value) {
  LOCK;
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return cudaSuccess;
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0) return ret(cudaErrorInvalidValue);
  const KernelSymbols& ks = kernel_symbols(fn, "kernel");
  const Arch a = arch_limits(config().arch);
  if (size_t(value) + ks.static_bytes > a.smem_optin)
    return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute(" + ks.name + ", MaxDynamicSharedMemorySize, " + std::to_string(value) + "): with its " +
                                           std::to_string(ks.static_bytes) + " static bytes that exceeds sm_" + std::to_string(config().arch) + "'s " +
                                           std::to_string(a.smem_optin) + " bytes per block");
  g_func_attrs[fn].max_dynamic = value;
  return cudaSuccess;
}

cudaError_t jbemu_func_get_attributes(cudaFuncAttributes* out, const void* fn) {
  LOCK;
  if (!out) return ret(cudaErrorInvalidValue);
  const KernelSymbols& ks = kernel_symbols(fn, "kernel");
  memset(out, 0, sizeof *out);
  out->sharedSizeBytes = ks.static_bytes;
  out->maxThreadsPerBlock = 1024;
  out->ptxVersion = out->binaryVersion = config().arch;
  const FuncAttr fa = g_func_attrs.count(fn) ? g_func_attrs[fn] : FuncAttr{};
  out->maxDynamicSharedSizeBytes = fa.max_dynamic >= 0 ? fa.max_dynamic : int(kDefaultSharedLimit - std::min(kDefaultSharedLimit, ks.static_bytes));
  return cudaSuccess;
}
