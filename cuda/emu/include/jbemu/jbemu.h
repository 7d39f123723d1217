// cuda/emu: the project's own emulation of the CUDA device model and runtime API on the CPU,
// so the very .cu sources of cuda/ build with a plain C++ compiler (g++) and run in CI
// without a GPU (cuda/README.md, "The emulation build"). Written for this project from the
// CUDA programming guide's semantics; it implements what the project's kernels and host
// code use, and checks what a GPU would not tell you:
//  - each block's threads run as user-level fibers switched only at __syncthreads and warp
//    collectives, in a deterministic order (JUKEBOX_CUDA_EMU_ORDER=forward|reverse), or as
//    real OS threads (JUKEBOX_CUDA_EMU_THREADS=os) so ThreadSanitizer sees the races;
//  - __shared__ memory (static and dynamic) and every device allocation are filled with
//    junk before use (JUKEBOX_CUDA_EMU_JUNK), so a missing barrier or an uninitialised read
//    gives a wrong answer rather than a lucky one;
//  - warp shuffles/votes check their masks against partial warps, exited lanes and
//    divergence; barriers check that every live thread reaches the same __syncthreads;
//  - launches are checked against the limits of the emulated architecture
//    (JUKEBOX_CUDA_EMU_ARCH, default 86: the smallest shared memory of the build's list);
//  - device memory has a budget (JUKEBOX_CUDA_EMU_MEMORY=2GiB) and guard zones checked after
//    every kernel; streams are executed lazily in stream order (a copy that is not ordered
//    after a kernel sees the memory before the kernel ran), with events, stream capture and
//    graph replay.
// Under nvcc this folder is not on the include path; this header refuses to compile there.
#pragma once

#if defined(__CUDACC__)
#error "cuda/emu/include is the emulation build's CUDA headers; nvcc must not see it"
#endif

#define JB_CUDA_EMULATED 1

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

// ---------------------------------------------------------------------------------------
// Function and variable qualifiers. Device code is host code here. __shared__ variables are
// function statics placed in one section (jbemu_shared): one block runs at a time, and the
// runtime fills a kernel's statics with junk before each block (it finds them by symbol).
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __constant__
#define __managed__
#define __grid_constant__
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static __attribute__((section("jbemu_shared"), aligned(16)))

// ---------------------------------------------------------------------------------------
// Vector types.
struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};
struct __align__(8) float2 { float x, y; };
struct float3 { float x, y, z; };
struct __align__(16) float4 { float x, y, z, w; };
struct __align__(8) int2 { int x, y; };
struct __align__(16) int4 { int x, y, z, w; };
struct __align__(8) uint2 { unsigned int x, y; };
struct __align__(16) uint4 { unsigned int x, y, z, w; };
struct __align__(16) double2 { double x, y; };
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float3 make_float3(float x, float y, float z) { return float3{x, y, z}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline int2 make_int2(int x, int y) { return int2{x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return uint2{x, y}; }
inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return uint3{x, y, z}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }
inline double2 make_double2(double x, double y) { return double2{x, y}; }

// ---------------------------------------------------------------------------------------
// Runtime API types.
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorCudartUnloading = 4,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInsufficientDriver = 35,
  cudaErrorCallRequiresNewerDriver = 36,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorDeviceNotLicensed = 102,
  cudaErrorNoKernelImageForDevice = 209,
  cudaErrorUnsupportedPtxVersion = 222,
  cudaErrorInvalidKernelImage = 200,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorLaunchTimeout = 702,
  cudaErrorIllegalInstruction = 715,
  cudaErrorMisalignedAddress = 716,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotSupported = 801,
  cudaErrorSystemDriverMismatch = 803,
  cudaErrorCompatNotSupportedOnDevice = 804,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureImplicit = 906,
  cudaErrorDevicesUnavailable = 46,
  cudaErrorUnknown = 999
};
typedef cudaError_t cudaError;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};

struct CUstream_st;
struct CUevent_st;
struct CUgraph_st;
struct CUgraphExec_st;
struct CUgraphNode_st;
typedef CUstream_st* cudaStream_t;
typedef CUevent_st* cudaEvent_t;
typedef CUgraph_st* cudaGraph_t;
typedef CUgraphExec_st* cudaGraphExec_t;
typedef CUgraphNode_st* cudaGraphNode_t;

#define cudaStreamDefault 0x00u
#define cudaStreamNonBlocking 0x01u
#define cudaStreamLegacy ((cudaStream_t)0x1)
#define cudaStreamPerThread ((cudaStream_t)0x2)
#define cudaEventDefault 0x00u
#define cudaEventBlockingSync 0x01u
#define cudaEventDisableTiming 0x02u
#define cudaHostAllocDefault 0x00u
#define cudaHostAllocPortable 0x01u
#define cudaHostAllocMapped 0x02u
#define cudaHostAllocWriteCombined 0x04u

enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal = 0, cudaStreamCaptureModeThreadLocal = 1, cudaStreamCaptureModeRelaxed = 2 };
enum cudaStreamCaptureStatus { cudaStreamCaptureStatusNone = 0, cudaStreamCaptureStatusActive = 1, cudaStreamCaptureStatusInvalidated = 2 };

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxBlockDimX = 2,
  cudaDevAttrMaxBlockDimY = 3,
  cudaDevAttrMaxBlockDimZ = 4,
  cudaDevAttrMaxGridDimX = 5,
  cudaDevAttrMaxGridDimY = 6,
  cudaDevAttrMaxGridDimZ = 7,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97
};

enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8, cudaFuncAttributePreferredSharedMemoryCarveout = 9 };

struct cudaFuncAttributes {
  size_t sharedSizeBytes;  // static __shared__ bytes (from the emulator's symbol map; 0 when unknown)
  size_t constSizeBytes, localSizeBytes;
  int maxThreadsPerBlock, numRegs, ptxVersion, binaryVersion, cacheModeCA;
  int maxDynamicSharedSizeBytes;
  int preferredShmemCarveout;
};

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  int regsPerBlock;
  int warpSize;
  size_t memPitch;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  size_t totalConstMem;
  int major, minor;
  size_t textureAlignment;
  int multiProcessorCount;
  int integrated;
  int canMapHostMemory;
  int concurrentKernels;
  int l2CacheSize;
  int maxThreadsPerMultiProcessor;
  size_t sharedMemPerMultiprocessor;
  int regsPerMultiprocessor;
  size_t sharedMemPerBlockOptin;
  int memoryBusWidth;
  int asyncEngineCount;
  int unifiedAddressing;
  int pciBusID, pciDeviceID, pciDomainID;
};

#define CUDART_VERSION 13000

// ---------------------------------------------------------------------------------------
// Runtime API (the subset the project uses; see cuda/emu/src/runtime.cc for the semantics).
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char* cudaGetErrorName(cudaError_t e);
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaRuntimeGetVersion(int* v);
cudaError_t cudaDriverGetVersion(int* v);
cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaGetDevice(int* d);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d);
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int d);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaDeviceReset(void);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);

cudaError_t cudaMalloc(void** p, size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaMallocHost(void** p, size_t bytes);
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned int flags);
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = 0);
cudaError_t cudaMemset(void* p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s = 0);
template <class T>
inline cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
template <class T>
inline cudaError_t cudaMallocHost(T** p, size_t bytes) {
  return cudaMallocHost(reinterpret_cast<void**>(p), bytes);
}

cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamQuery(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags = 0);
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* g);
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status);

cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventQuery(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t g, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t g);
cudaError_t cudaGraphGetNodes(cudaGraph_t g, cudaGraphNode_t* nodes, size_t* count);

cudaError_t jbemu_func_set_attribute(const void* fn, cudaFuncAttribute attr, int value);
cudaError_t jbemu_func_get_attributes(cudaFuncAttributes* out, const void* fn);
template <class F>
inline cudaError_t cudaFuncSetAttribute(F* fn, cudaFuncAttribute attr, int value) {
  return jbemu_func_set_attribute(reinterpret_cast<const void*>(fn), attr, value);
}
template <class F>
inline cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* out, F* fn) {
  return jbemu_func_get_attributes(out, reinterpret_cast<const void*>(fn));
}

// ---------------------------------------------------------------------------------------
// The emulator's own interface (not CUDA): launch, the built-in variables and collectives.
namespace jbemu {

struct Lane {
  uint3 thread_idx;
};
struct BlockVars {
  uint3 block_idx;
  dim3 block_dim, grid_dim;
  unsigned char* dynamic_shared;
};
// The running thread's and block's built-in variables. __thread (not thread_local): plain
// static TLS with no per-access initialisation call, which also keeps GCC 12's UBSan from
// a false "null pointer" report on the thread_local wrapper.
extern __thread Lane* t_lane;
extern __thread BlockVars* t_block;

/** True in the emulation build; the device name and build info also say "emulated on the CPU". */
constexpr bool kEmulated = true;

enum class Op : int { ShflIdx, ShflUp, ShflDown, ShflXor, Ballot, Any, All, SyncWarp };

void syncthreads(const char* file, int line);
int syncthreads_reduce(int kind, int pred, const char* file, int line);  // 0 count, 1 and, 2 or
void syncwarp(const char* file, int line, unsigned mask = 0xffffffffu);
uint64_t warp_collective(Op op, const char* file, int line, unsigned mask, uint64_t value, int arg, int width);
unsigned activemask();
/** Records a device-side fault (the block stops; the launch's stream gets a sticky error). */
[[noreturn]] void device_fault(const char* file, int line, const char* what);

template <class T>
inline T shfl(Op op, const char* file, int line, unsigned mask, T var, int arg, int width = 32) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffles move up to 8 bytes");
  uint64_t v = 0;
  memcpy(&v, &var, sizeof(T));
  const uint64_t r = warp_collective(op, file, line, mask, v, arg, width);
  T out;
  memcpy(&out, &r, sizeof(T));
  return out;
}

struct KernelSite {
  const void* fn;
  const char* name;
  const char* file;
  int line;
};

cudaError_t enqueue_kernel(const KernelSite& site, dim3 grid, dim3 block, size_t smem, cudaStream_t s, std::function<void()> body);

template <class... P>
struct Launcher {
  void (*fn)(P...);
  KernelSite site;
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
  template <class... A>
  void operator()(A&&... args) const {
    static_assert(sizeof...(A) == sizeof...(P), "wrong number of kernel arguments");
    // Arguments are converted to the kernel's parameter types and copied now, as a launch does.
    auto params = std::make_shared<const std::tuple<typename std::decay<P>::type...>>(std::forward<A>(args)...);
    void (*f)(P...) = fn;
    (void)enqueue_kernel(site, grid, block, smem, stream, [f, params] { std::apply(f, *params); });
  }
};

template <class... P>
inline Launcher<P...> launch(void (*fn)(P...), const char* name, dim3 grid, dim3 block, size_t smem, cudaStream_t stream, const char* file,
                             int line) {
  return Launcher<P...>{fn, KernelSite{reinterpret_cast<const void*>(fn), name, file, line}, grid, block, smem, stream};
}

template <class T>
inline T* dynamic_shared() {
  return reinterpret_cast<T*>(t_block->dynamic_shared);
}

/** True when a block's threads run as OS threads (JUKEBOX_CUDA_EMU_THREADS=os, or a
 * ThreadSanitizer build), false for fibers in a fixed order. */
bool os_threads();
/** True in the reverse thread order (JUKEBOX_CUDA_EMU_ORDER=reverse). */
bool reverse_order();
/** Last diagnostic the emulator printed (launch check or device fault), for tests. */
const char* last_message();
/** Kernels launched since the process started (all streams, graphs included). */
uint64_t kernels_run();

}  // namespace jbemu

// ---------------------------------------------------------------------------------------
// Built-in variables and device functions.
#define threadIdx (::jbemu::t_lane->thread_idx)
#define blockIdx (::jbemu::t_block->block_idx)
#define blockDim (::jbemu::t_block->block_dim)
#define gridDim (::jbemu::t_block->grid_dim)
static constexpr int warpSize = 32;

#define __syncthreads() ::jbemu::syncthreads(__FILE__, __LINE__)
#define __syncthreads_count(p) ::jbemu::syncthreads_reduce(0, (p) ? 1 : 0, __FILE__, __LINE__)
#define __syncthreads_and(p) ::jbemu::syncthreads_reduce(1, (p) ? 1 : 0, __FILE__, __LINE__)
#define __syncthreads_or(p) ::jbemu::syncthreads_reduce(2, (p) ? 1 : 0, __FILE__, __LINE__)
#define __syncwarp(...) ::jbemu::syncwarp(__FILE__, __LINE__, ##__VA_ARGS__)
#define __shfl_sync(...) ::jbemu::shfl(::jbemu::Op::ShflIdx, __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_up_sync(...) ::jbemu::shfl(::jbemu::Op::ShflUp, __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_down_sync(...) ::jbemu::shfl(::jbemu::Op::ShflDown, __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_xor_sync(...) ::jbemu::shfl(::jbemu::Op::ShflXor, __FILE__, __LINE__, __VA_ARGS__)
#define __ballot_sync(m, p) unsigned(::jbemu::warp_collective(::jbemu::Op::Ballot, __FILE__, __LINE__, (m), (p) ? 1u : 0u, 0, 32))
#define __any_sync(m, p) int(::jbemu::warp_collective(::jbemu::Op::Any, __FILE__, __LINE__, (m), (p) ? 1u : 0u, 0, 32))
#define __all_sync(m, p) int(::jbemu::warp_collective(::jbemu::Op::All, __FILE__, __LINE__, (m), (p) ? 1u : 0u, 0, 32))
#define __activemask() ::jbemu::activemask()
#define __trap() ::jbemu::device_fault(__FILE__, __LINE__, "__trap()")

inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
template <class T>
inline T __ldg(const T* p) {
  return *p;
}

// min/max as CUDA overloads them for device code (the host has only std::min/std::max).
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

// Single-precision intrinsics: the correctly rounded host operations (the fast GPU
// approximations __expf etc. are within a few ulp of these; tolerances cover the difference).
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __powf(float a, float b) { return powf(a, b); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x == x ? x : 0.0f)); }
inline int __float2int_rn(float x) { return int(nearbyintf(x)); }
inline int __float2int_rz(float x) { return int(x); }
inline float __int2float_rn(int x) { return float(x); }
inline int __float_as_int(float x) {
  int i;
  memcpy(&i, &x, 4);
  return i;
}
inline unsigned int __float_as_uint(float x) {
  unsigned int i;
  memcpy(&i, &x, 4);
  return i;
}
inline float __int_as_float(int i) {
  float x;
  memcpy(&x, &i, 4);
  return x;
}
inline float __uint_as_float(unsigned int i) {
  float x;
  memcpy(&x, &i, 4);
  return x;
}
inline long long __double_as_longlong(double x) {
  long long i;
  memcpy(&i, &x, 8);
  return i;
}
inline double __longlong_as_double(long long i) {
  double x;
  memcpy(&x, &i, 8);
  return x;
}
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(unsigned(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline unsigned int __brev(unsigned int x) {
  unsigned int r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
inline unsigned int __umulhi(unsigned int a, unsigned int b) { return unsigned((uint64_t(a) * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
namespace jbemu {
long long clock_ticks();
}
inline long long clock64() { return ::jbemu::clock_ticks(); }

// Atomics: real atomics (the OS-thread mode runs a block's threads concurrently).
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline unsigned int atomicAdd(unsigned int* p, unsigned int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline int atomicSub(int* p, int v) { return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST); }
inline int atomicExch(int* p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
inline unsigned int atomicExch(unsigned int* p, unsigned int v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
inline int atomicCAS(int* p, int cmp, int v) {
  __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return cmp;
}
inline unsigned int atomicCAS(unsigned int* p, unsigned int cmp, unsigned int v) {
  __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return cmp;
}
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long cmp, unsigned long long v) {
  __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return cmp;
}
inline int atomicMax(int* p, int v) {
  int old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
  while (old < v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
  }
  return old;
}
inline int atomicMin(int* p, int v) {
  int old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
  while (old > v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
  }
  return old;
}
inline float atomicAdd(float* p, float v) {
  unsigned int* u = reinterpret_cast<unsigned int*>(p);
  unsigned int old = __atomic_load_n(u, __ATOMIC_SEQ_CST);
  for (;;) {
    const unsigned int want = __float_as_uint(__uint_as_float(old) + v);
    if (__atomic_compare_exchange_n(u, &old, want, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return __uint_as_float(old);
  }
}
inline double atomicAdd(double* p, double v) {
  unsigned long long* u = reinterpret_cast<unsigned long long*>(p);
  unsigned long long old = __atomic_load_n(u, __ATOMIC_SEQ_CST);
  for (;;) {
    const unsigned long long want = (unsigned long long)__double_as_longlong(__longlong_as_double((long long)old) + v);
    if (__atomic_compare_exchange_n(u, &old, want, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return __longlong_as_double((long long)old);
  }
}
