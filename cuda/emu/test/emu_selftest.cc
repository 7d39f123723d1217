// The emulator's own test (build/cuda-emu/jukebox-cuda-emu-selftest, run by
// test/cuda-emu.test.ts): small kernels, most of them deliberately broken, that the emulator
// must catch, and the runtime semantics the backend relies on. Each case prints
// "ok <case>: <what was seen>" or "FAIL <case>: ..."; the last line is
// "emu selftest ok: N cases" (exit 0) or "emu selftest FAILED: ..." (exit 1).
//   --case NAME   run one case (--list prints them)
// Broken kernels fault on purpose, so the emulator prints its diagnostics on stderr; set
// JUKEBOX_CUDA_EMU_QUIET=1 to hide them. A fault is sticky, as on a GPU; cudaDeviceReset
// clears it here between cases (an emulator extension). Built with ThreadSanitizer
// (build.mjs --sanitize=thread: OS threads), the missing-barrier case is the one data race
// TSan must report (block_sum), and nothing else may race.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <cmath>

#include <functional>
#include <string>
#include <vector>

#include "jb_launch.h"
#include "mma.h"

namespace {

int g_failed = 0, g_ok = 0;
std::string g_detail;

bool expect(bool cond, const std::string& why) {
  if (!cond && g_detail.empty()) g_detail = why;
  return cond;
}

#define TRY(call)                                                                      \
  do {                                                                                 \
    cudaError_t e_ = (call);                                                           \
    if (e_ != cudaSuccess) {                                                           \
      expect(false, std::string(#call) + " -> " + cudaGetErrorName(e_));               \
      return false;                                                                    \
    }                                                                                  \
  } while (0)

bool last_message_has(const char* what) { return strstr(jbemu::last_message(), what) != nullptr; }

// ---------------------------------------------------------------------------------------
// Kernels.

// A block sum through shared memory; `barrier` false removes the barrier between the
// writes and thread 0's reads (the sampling kernel's bug).
__global__ void block_sum(const float* x, float* out, bool barrier) {
  __shared__ float part[256];
  part[threadIdx.x] = x[blockIdx.x * blockDim.x + threadIdx.x];
  if (barrier) __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0;
    for (unsigned i = 0; i < blockDim.x; ++i) s += part[i];
    out[blockIdx.x] = s;
  }
}

// One write per thread, thread n - 1 one element past the end when `oob`.
[[maybe_unused]] __global__ void write_all(float* y, int n, bool oob) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i + (oob && i == n - 1 ? 1 : 0)] = float(i);
}

// A warp sum with a shuffle; `mask` is what the kernel claims is converged.
__global__ void warp_sum(const float* x, float* out, unsigned mask) {
  float v = x[threadIdx.x];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(mask, v, o);
  if (threadIdx.x % 32 == 0) out[threadIdx.x / 32] = v;
}

// Lanes 16..31 leave before the full-mask shuffle.
__global__ void shuffle_after_exit(float* out) {
  if (threadIdx.x % 32 >= 16) return;
  float v = float(threadIdx.x);
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}

// Correct partial-warp use: 48 threads, the second warp's 16 lanes shuffle among themselves.
__global__ void partial_warp_ok(const float* x, float* out) {
  const unsigned lanes = threadIdx.x < 32 ? 0xffffffffu : 0x0000ffffu;
  const int width = threadIdx.x < 32 ? 32 : 16;
  float v = x[threadIdx.x];
  for (int o = width / 2; o > 0; o >>= 1) v += __shfl_xor_sync(lanes, v, o, width);
  const unsigned ballot = __ballot_sync(lanes, x[threadIdx.x] > 0.0f);
  if (threadIdx.x % 32 == 0) {
    out[threadIdx.x / 32] = v;
    out[2 + threadIdx.x / 32] = float(__popc(ballot));
  }
}

__global__ void divergent_barrier(float* out) {
  if (threadIdx.x < 32) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1.0f;
}

__global__ void barrier_after_exit(float* out) {
  if (threadIdx.x >= 64) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

__global__ void deadlock(float* out) {
  float v = float(threadIdx.x);
  if (threadIdx.x == 0) __syncthreads();
  else v = __shfl_sync(0xffffffffu, v, 0);
  out[threadIdx.x] = v;
}

__global__ void read_uninitialised_shared(unsigned* out) {
  __shared__ unsigned never_written[4];
  if (threadIdx.x == 0) out[0] = never_written[2];
}

__global__ void big_static_shared(float* out) {
  __shared__ float big[13 * 1024];  // 52 KiB: over the 48 KiB static limit
  big[threadIdx.x] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = big[(threadIdx.x + 1) % blockDim.x];
}

__global__ void dynamic_shared_sum(const float* x, int n, float* out) {
  JB_DYNAMIC_SHARED(float, buf);
  for (int i = threadIdx.x; i < n; i += blockDim.x) buf[i] = x[i];
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0;
    for (int i = 0; i < n; ++i) s += buf[i];
    out[0] = s;
  }
}

__global__ void record_order(int* counter, int* first) {
  const int k = atomicAdd(counter, 1);
  if (k == 0) first[0] = int(threadIdx.x);
}

__global__ void fill(float* y, int n, float v) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = v;
}

__global__ void add_scalar(float* y, int n, float v) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] += v;
}

__global__ void sync_count(const float* x, int* out) {
  const int c = __syncthreads_count(x[threadIdx.x] > 0.0f);
  const int a = __syncthreads_and(x[threadIdx.x] > -100.0f);
  const int o = __syncthreads_or(x[threadIdx.x] > 100.0f);
  if (threadIdx.x == 0) {
    out[0] = c;
    out[1] = a;
    out[2] = o;
  }
}

// C (16 x 16, fp32) = A (16 x 16, fp16 row-major) . B (16 x 16, fp16 column-major) + 1, by
// one warp with the warp matrix API (what a tensor-core kernel would use instead of PTX).
__global__ void wmma_16x16x16(const __half* a, const __half* b, float* c) {
  using namespace nvcuda;
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
  wmma::fill_fragment(fc, 1.0f);
  wmma::load_matrix_sync(fa, a, 16);
  wmma::load_matrix_sync(fb, b, 16);
  wmma::mma_sync(fc, fa, fb, fc);
  for (int i = 0; i < fc.num_elements; ++i) fc.x[i] *= 2.0f;  // elementwise: portable
  wmma::store_matrix_sync(c, fc, 16, wmma::mem_row_major);
}

// ---------------------------------------------------------------------------------------
// Cases.

std::vector<float> iota(int n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[size_t(i)] = float(i % 7) - 2.0f;
  return v;
}

template <class T>
T* upload(const std::vector<T>& h) {
  T* d = nullptr;
  if (cudaMalloc(&d, h.size() * sizeof(T)) != cudaSuccess) return nullptr;
  if (cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice) != cudaSuccess) return nullptr;
  return d;
}

bool case_barrier() {
  const std::vector<float> x = iota(256);
  float want = 0;
  for (float v : x) want += v;
  float* dx = upload(x);
  float* dout = nullptr;
  TRY(cudaMalloc(&dout, 4));
  float with = 0, without = 0;
  // the broken launch first (on fresh shadow memory under ThreadSanitizer, which keeps a few
  // accesses per word), three times with OS threads so TSan sees the race whatever the timing
  for (int r = 0; r < (jbemu::os_threads() ? 3 : 1); ++r) {
    JB_LAUNCH(block_sum, 1, 256, 0, 0)(dx, dout, false);
    TRY(cudaMemcpy(&without, dout, 4, cudaMemcpyDeviceToHost));
  }
  JB_LAUNCH(block_sum, 1, 256, 0, 0)(dx, dout, true);
  TRY(cudaMemcpy(&with, dout, 4, cudaMemcpyDeviceToHost));
  cudaFree(dx);
  cudaFree(dout);
  g_detail = "with the barrier " + std::to_string(with) + " (want " + std::to_string(want) + "), without " + std::to_string(without);
  // forward order: thread 0 reads before the others wrote (junk); reverse order: thread 0
  // runs last and sees every write, so the missing barrier shows in the forward order only
  const bool reverse = jbemu::reverse_order(), os = jbemu::os_threads();
  if (with != want) return false;
  if (os) return true;  // real threads: the outcome of the race is not determined
  return reverse ? without == want : without != want;
}

bool case_out_of_bounds() {
#if defined(__SANITIZE_ADDRESS__)
  g_detail = "skipped under AddressSanitizer (it reports the write itself and stops the process)";
  return true;
#else
  float* y = nullptr;
  TRY(cudaMalloc(&y, 1000 * sizeof(float)));
  JB_LAUNCH(write_all, 4, 256, 0, 0)(y, 1000, false);
  TRY(cudaDeviceSynchronize());
  JB_LAUNCH(write_all, 4, 256, 0, 0)(y, 1000, true);
  const cudaError_t e = cudaDeviceSynchronize();
  const cudaError_t sticky = cudaMalloc(reinterpret_cast<void**>(&y), 16);
  g_detail = std::string(cudaGetErrorName(e)) + ": " + jbemu::last_message();
  const bool ok = e == cudaErrorIllegalAddress && sticky == cudaErrorIllegalAddress && last_message_has("past the end of the 4000-byte allocation") &&
                  last_message_has("write_all");
  cudaDeviceReset();
  return ok;
#endif
}

bool fault_case(const std::function<void()>& launch, const char* must_say) {
  launch();
  const cudaError_t e = cudaDeviceSynchronize();
  g_detail = std::string(cudaGetErrorName(e)) + ": " + jbemu::last_message();
  const bool ok = e != cudaSuccess && last_message_has(must_say);
  cudaDeviceReset();
  return ok;
}

bool case_partial_warp_full_mask() {
  const std::vector<float> x = iota(48);
  float* dx = upload(x);
  float* dout = nullptr;
  TRY(cudaMalloc(&dout, 16));
  return fault_case([&] { JB_LAUNCH(warp_sum, 1, 48, 0, 0)(dx, dout, 0xffffffffu); }, "which do not exist");
}

bool case_exited_lane() {
  float* dout = nullptr;
  TRY(cudaMalloc(&dout, 128));
  return fault_case([&] { JB_LAUNCH(shuffle_after_exit, 1, 32, 0, 0)(dout); }, "has exited");
}

bool case_partial_warp_correct() {
  const std::vector<float> x = iota(48);
  float* dx = upload(x);
  float* dout = nullptr;
  TRY(cudaMalloc(&dout, 16));
  JB_LAUNCH(partial_warp_ok, 1, 48, 0, 0)(dx, dout);
  float got[4];
  TRY(cudaMemcpy(got, dout, 16, cudaMemcpyDeviceToHost));
  float s0 = 0, s1 = 0;
  int p0 = 0, p1 = 0;
  for (int i = 0; i < 48; ++i) {
    (i < 32 ? s0 : s1) += x[size_t(i)];
    (i < 32 ? p0 : p1) += x[size_t(i)] > 0.0f;
  }
  cudaFree(dx);
  cudaFree(dout);
  g_detail = "sums " + std::to_string(got[0]) + ", " + std::to_string(got[1]) + "; ballots " + std::to_string(got[2]) + ", " + std::to_string(got[3]);
  return got[0] == s0 && got[1] == s1 && got[2] == float(p0) && got[3] == float(p1);
}

bool case_divergent_barrier() {
  float* dout = nullptr;
  TRY(cudaMalloc(&dout, 256));
  return fault_case([&] { JB_LAUNCH(divergent_barrier, 1, 64, 0, 0)(dout); }, "divergent __syncthreads");
}

bool case_barrier_after_exit() {
  float* dout = nullptr;
  TRY(cudaMalloc(&dout, 512));
  return fault_case([&] { JB_LAUNCH(barrier_after_exit, 1, 128, 0, 0)(dout); }, "have exited");
}

bool case_deadlock() {
  float* dout = nullptr;
  TRY(cudaMalloc(&dout, 128));
  return fault_case([&] { JB_LAUNCH(deadlock, 1, 32, 0, 0)(dout); }, "deadlock");
}

bool case_junk() {
  unsigned* d = nullptr;
  TRY(cudaMalloc(&d, 16));
  unsigned fresh[4];
  TRY(cudaMemcpy(fresh, d, 16, cudaMemcpyDeviceToHost));  // cudaMalloc'd memory is junk
  JB_LAUNCH(read_uninitialised_shared, 1, 32, 0, 0)(d);
  unsigned shared_junk = 0;
  TRY(cudaMemcpy(&shared_junk, d, 4, cudaMemcpyDeviceToHost));
  cudaFree(d);
  char b[128];
  snprintf(b, sizeof b, "fresh device memory 0x%08x, unwritten __shared__ 0x%08x", fresh[0], shared_junk);
  g_detail = b;
  return fresh[0] != 0 && shared_junk != 0;  // a fixed pattern by default (JUKEBOX_CUDA_EMU_JUNK=random: random bytes)
}

bool case_launch_limits() {
  float* d = nullptr;
  TRY(cudaMalloc(&d, 4096 * sizeof(float)));
  bool ok = true;
  JB_LAUNCH(fill, 1, 1025, 0, 0)(d, 10, 1.0f);
  ok &= expect(cudaGetLastError() == cudaErrorInvalidConfiguration && last_message_has("1024 threads"), "1025 threads per block");
  JB_LAUNCH(fill, dim3(1, 65536), 32, 0, 0)(d, 10, 1.0f);
  ok &= expect(cudaGetLastError() == cudaErrorInvalidConfiguration, "grid.y 65536");
  JB_LAUNCH(fill, dim3(1, 1, 1), dim3(32, 1, 65), 0, 0)(d, 10, 1.0f);
  ok &= expect(cudaGetLastError() == cudaErrorInvalidConfiguration, "block.z 65");
  JB_LAUNCH(big_static_shared, 1, 32, 0, 0)(d);
  ok &= expect(cudaGetLastError() == cudaErrorInvalidValue && last_message_has("static __shared__"), std::string("52 KiB static shared: ") + jbemu::last_message());
  // dynamic: 60 KiB needs the opt-in attribute; then it runs; more than sm_86's 99 KiB cannot be opted in
  std::vector<float> x(15 * 1024, 1.0f);
  float* dx = upload(x);
  JB_LAUNCH(dynamic_shared_sum, 1, 256, 60 * 1024, 0)(dx, 15 * 1024, d);
  ok &= expect(cudaGetLastError() == cudaErrorInvalidValue && last_message_has("cudaFuncAttributeMaxDynamicSharedMemorySize"), "60 KiB without opt-in");
  TRY(cudaFuncSetAttribute(dynamic_shared_sum, cudaFuncAttributeMaxDynamicSharedMemorySize, 60 * 1024));
  JB_LAUNCH(dynamic_shared_sum, 1, 256, 60 * 1024, 0)(dx, 15 * 1024, d);
  ok &= expect(cudaGetLastError() == cudaSuccess, "60 KiB with opt-in");
  float s = 0;
  TRY(cudaMemcpy(&s, d, 4, cudaMemcpyDeviceToHost));
  ok &= expect(s == 15 * 1024, "dynamic shared sum " + std::to_string(s));
  cudaDeviceProp p;
  TRY(cudaGetDeviceProperties(&p, 0));
  const int too_much = int(p.sharedMemPerBlockOptin) + 1024;
  ok &= expect(cudaFuncSetAttribute(dynamic_shared_sum, cudaFuncAttributeMaxDynamicSharedMemorySize, too_much) == cudaErrorInvalidValue,
               "opt-in beyond the architecture");
  cudaGetLastError();
  cudaFree(dx);
  cudaFree(d);
  g_detail = "block, grid, static and dynamic shared-memory limits of sm_" + std::to_string(p.major) + std::to_string(p.minor) + " (opt-in max " +
             std::to_string(p.sharedMemPerBlockOptin) + " bytes)";
  return ok;
}

bool case_thread_order() {
  int* d = nullptr;
  TRY(cudaMalloc(&d, 8));
  TRY(cudaMemset(d, 0, 8));
  JB_LAUNCH(record_order, 1, 64, 0, 0)(d, d + 1);
  int h[2];
  TRY(cudaMemcpy(h, d, 8, cudaMemcpyDeviceToHost));
  cudaFree(d);
  const bool reverse = jbemu::reverse_order();
  g_detail = "first thread to run: " + std::to_string(h[1]) + " of 64 (" + (jbemu::os_threads() ? "OS threads" : reverse ? "reverse order" : "forward order") + ")";
  if (jbemu::os_threads()) return h[0] == 64;
  return h[0] == 64 && h[1] == (reverse ? 63 : 0);
}

bool case_sync_reductions() {
  const std::vector<float> x = iota(96);
  float* dx = upload(x);
  int* d = nullptr;
  TRY(cudaMalloc(&d, 12));
  JB_LAUNCH(sync_count, 1, 96, 0, 0)(dx, d);
  int h[3];
  TRY(cudaMemcpy(h, d, 12, cudaMemcpyDeviceToHost));
  int want = 0;
  for (float v : x) want += v > 0.0f;
  cudaFree(dx);
  cudaFree(d);
  g_detail = "__syncthreads_count " + std::to_string(h[0]) + " (want " + std::to_string(want) + "), and " + std::to_string(h[1]) + ", or " + std::to_string(h[2]);
  return h[0] == want && h[1] == 1 && h[2] == 0;
}

bool case_stream_order() {
  const int n = 1000;
  float* y = nullptr;
  TRY(cudaMalloc(&y, n * 4));
  TRY(cudaMemset(y, 0, n * 4));
  TRY(cudaDeviceSynchronize());
  cudaStream_t nb, blocking;
  TRY(cudaStreamCreateWithFlags(&nb, cudaStreamNonBlocking));
  TRY(cudaStreamCreate(&blocking));
  float v = -1;
  // a kernel on a non-blocking stream, read with a plain cudaMemcpy (legacy stream): not ordered
  JB_LAUNCH(fill, 4, 256, 0, nb)(y, n, 7.0f);
  TRY(cudaMemcpy(&v, y + 5, 4, cudaMemcpyDeviceToHost));
  const float unordered = v;
  TRY(cudaStreamSynchronize(nb));
  TRY(cudaMemcpy(&v, y + 5, 4, cudaMemcpyDeviceToHost));
  const float after_sync = v;
  // on a blocking stream the legacy stream waits for it
  JB_LAUNCH(fill, 4, 256, 0, blocking)(y, n, 8.0f);
  TRY(cudaMemcpy(&v, y + 5, 4, cudaMemcpyDeviceToHost));
  const float blocking_read = v;
  // async copy on the same stream: in order
  JB_LAUNCH(add_scalar, 4, 256, 0, nb)(y, n, 1.0f);
  TRY(cudaMemcpyAsync(&v, y + 5, 4, cudaMemcpyDeviceToHost, nb));  // pageable: returns when done
  const float same_stream = v;
  // cross-stream order through an event
  cudaEvent_t e;
  TRY(cudaEventCreate(&e));
  JB_LAUNCH(add_scalar, 4, 256, 0, nb)(y, n, 1.0f);
  TRY(cudaEventRecord(e, nb));
  TRY(cudaStreamWaitEvent(blocking, e, 0));
  JB_LAUNCH(add_scalar, 4, 256, 0, blocking)(y, n, 100.0f);
  TRY(cudaStreamSynchronize(blocking));
  TRY(cudaMemcpyAsync(&v, y + 5, 4, cudaMemcpyDeviceToHost, blocking));
  const float via_event = v;
  // H2D from pageable memory is staged at the call
  float host = 3.0f;
  TRY(cudaMemcpyAsync(y, &host, 4, cudaMemcpyHostToDevice, nb));
  host = 4.0f;
  TRY(cudaStreamSynchronize(nb));
  TRY(cudaMemcpy(&v, y, 4, cudaMemcpyDeviceToHost));
  const float staged = v;
  cudaEventDestroy(e);
  cudaStreamDestroy(nb);
  cudaStreamDestroy(blocking);
  cudaFree(y);
  char b[256];
  snprintf(b, sizeof b, "unordered read %g, after sync %g, blocking stream %g, same stream %g, via event %g, staged copy %g", unordered, after_sync,
           blocking_read, same_stream, via_event, staged);
  g_detail = b;
  const bool eager = getenv("JUKEBOX_CUDA_EMU_STREAMS") && strcmp(getenv("JUKEBOX_CUDA_EMU_STREAMS"), "eager") == 0;
  return (eager || unordered == 0.0f) && after_sync == 7.0f && blocking_read == 8.0f && same_stream == 9.0f && via_event == 110.0f && staged == 3.0f;
}

bool case_graph() {
  const int n = 256;
  float* y = nullptr;
  TRY(cudaMalloc(&y, n * 4));
  cudaStream_t s;
  TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  TRY(cudaMemsetAsync(y, 0, n * 4, s));
  float step = 1.0f;
  cudaGraph_t g;
  cudaGraphExec_t x;
  TRY(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  JB_LAUNCH(add_scalar, 1, n, 0, s)(y, n, step);  // the argument is baked into the graph
  TRY(cudaStreamEndCapture(s, &g));
  size_t nodes = 0;
  TRY(cudaGraphGetNodes(g, nullptr, &nodes));
  TRY(cudaGraphInstantiate(&x, g, 0));
  step = 100.0f;  // too late: the graph replays what was captured
  for (int r = 0; r < 5; ++r) TRY(cudaGraphLaunch(x, s));
  float v = 0;
  TRY(cudaMemcpyAsync(&v, y + 3, 4, cudaMemcpyDeviceToHost, s));
  // a synchronous call in a global-mode capture invalidates it
  cudaGraph_t bad = nullptr;
  TRY(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  void* p = nullptr;
  const cudaError_t malloc_in_capture = cudaMalloc(&p, 16);
  const cudaError_t end = cudaStreamEndCapture(s, &bad);
  cudaGetLastError();
  cudaGraphExecDestroy(x);
  cudaGraphDestroy(g);
  cudaStreamDestroy(s);
  cudaFree(y);
  g_detail = std::to_string(nodes) + " node, 5 replays -> " + std::to_string(v) + " (the captured argument, not the later value); cudaMalloc in a capture: " +
             cudaGetErrorName(malloc_in_capture) + ", end capture: " + cudaGetErrorName(end);
  return nodes == 1 && v == 5.0f && malloc_in_capture == cudaErrorStreamCaptureUnsupported && end == cudaErrorStreamCaptureInvalidated && !bad;
}

bool case_memory_budget() {
  size_t free_b = 0, total = 0;
  TRY(cudaMemGetInfo(&free_b, &total));
  void* a = nullptr;
  void* b = nullptr;
  const size_t half = total / 2 + (size_t(1) << 20);
  TRY(cudaMalloc(&a, half));
  const cudaError_t second = cudaMalloc(&b, half);
  cudaGetLastError();
  size_t free_after = 0;
  TRY(cudaMemGetInfo(&free_after, &total));
  TRY(cudaFree(a));
  size_t free_end = 0;
  TRY(cudaMemGetInfo(&free_end, &total));
  g_detail = "budget " + std::to_string(total >> 20) + " MiB; two allocations of " + std::to_string(half >> 20) + " MiB: the second -> " +
             cudaGetErrorName(second) + "; free " + std::to_string(free_after >> 20) + " MiB then " + std::to_string(free_end >> 20) + " MiB";
  return second == cudaErrorMemoryAllocation && b == nullptr && free_after == free_b - half && free_end == free_b;
}

bool case_events() {
  cudaEvent_t a, b;
  TRY(cudaEventCreate(&a));
  TRY(cudaEventCreate(&b));
  float* y = nullptr;
  TRY(cudaMalloc(&y, 4096 * 4));
  TRY(cudaEventRecord(a, 0));
  JB_LAUNCH(fill, 16, 256, 0, 0)(y, 4096, 2.0f);
  TRY(cudaEventRecord(b, 0));
  const cudaError_t before = cudaEventElapsedTime(nullptr, a, b);
  float ms = -1;
  TRY(cudaEventSynchronize(b));
  TRY(cudaEventElapsedTime(&ms, a, b));
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaFree(y);
  g_detail = "elapsed " + std::to_string(ms) + " ms";
  (void)before;
  return ms >= 0.0f;
}

bool case_wmma() {
  std::vector<__half> a(256), b(256);
  for (int i = 0; i < 256; ++i) {
    a[size_t(i)] = __half(float(i % 7) - 3.0f);
    b[size_t(i)] = __half(float(i % 5) * 0.5f);
  }
  __half* da = upload(a);
  __half* db = upload(b);
  float* dc = nullptr;
  TRY(cudaMalloc(&dc, 256 * 4));
  JB_LAUNCH(wmma_16x16x16, 1, 32, 0, 0)(da, db, dc);
  std::vector<float> c(256);
  TRY(cudaMemcpy(c.data(), dc, 256 * 4, cudaMemcpyDeviceToHost));
  double worst = 0;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      float want = 1.0f;
      for (int k = 0; k < 16; ++k) want += float(a[size_t(i * 16 + k)]) * float(b[size_t(j * 16 + k)]);  // B column-major
      worst = std::max(worst, double(std::fabs(c[size_t(i * 16 + j)] - 2.0f * want)));
    }
  // the same from a partial warp (16 threads): the collective names lanes that do not exist
  JB_LAUNCH(wmma_16x16x16, 1, 16, 0, 0)(da, db, dc);
  const cudaError_t e = cudaDeviceSynchronize();
  const bool caught = e == cudaErrorLaunchFailure && last_message_has("which do not exist");
  cudaDeviceReset();
  g_detail = "16x16x16 product max err " + std::to_string(worst) + "; from a partial warp: " + cudaGetErrorName(e);
  return worst == 0.0 && caught;
}

bool case_device() {
  cudaDeviceProp p;
  TRY(cudaGetDeviceProperties(&p, 0));
  g_detail = p.name;
  return strstr(p.name, "cuda (emulated on the CPU)") != nullptr && p.warpSize == 32 && p.maxThreadsPerBlock == 1024;
}

struct Case {
  const char* name;
  bool (*run)();
};
const Case kCases[] = {
    {"device properties say emulated", case_device},
    {"missing barrier gives a wrong answer", case_barrier},
    {"out-of-bounds write caught", case_out_of_bounds},
    {"full-mask shuffle in a partial warp caught", case_partial_warp_full_mask},
    {"shuffle naming an exited lane caught", case_exited_lane},
    {"partial-warp shuffles and ballots with correct masks", case_partial_warp_correct},
    {"divergent __syncthreads caught", case_divergent_barrier},
    {"__syncthreads after some threads exited caught", case_barrier_after_exit},
    {"deadlock caught", case_deadlock},
    {"junk in fresh device and shared memory", case_junk},
    {"launch limits", case_launch_limits},
    {"thread order", case_thread_order},
    {"__syncthreads_count/and/or", case_sync_reductions},
    {"stream order", case_stream_order},
    {"graph replay and capture rules", case_graph},
    {"device-memory budget", case_memory_budget},
    {"events", case_events},
    {"wmma fragments (and a partial warp caught)", case_wmma},
};

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  if (!getenv("JUKEBOX_CUDA_EMU_MEMORY")) setenv("JUKEBOX_CUDA_EMU_MEMORY", "256MiB", 1);  // before the first CUDA call
  const char* only = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--list") == 0) {
      for (const Case& c : kCases) printf("%s\n", c.name);
      return 0;
    }
    if (strcmp(argv[i], "--case") == 0 && i + 1 < argc) only = argv[++i];
  }
  for (const Case& c : kCases) {
    if (only && strcmp(only, c.name) != 0) continue;
    g_detail.clear();
    const bool ok = c.run();
    if (ok) ++g_ok;
    else ++g_failed;
    printf("%s %s: %s\n", ok ? "ok  " : "FAIL", c.name, g_detail.c_str());
    cudaDeviceReset();
  }
  if (g_failed) {
    printf("emu selftest FAILED: %d of %d cases\n", g_failed, g_failed + g_ok);
    return 1;
  }
  printf("emu selftest ok: %d cases\n", g_ok);
  return 0;
}
