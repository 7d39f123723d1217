// The exported C ABI (include/jukebox_cuda.h): discovery, contexts and buffers, and the
// kernel entries implemented so far. Host code only (CUDA runtime API); kernels live in *.cu
// files. Nothing here throws across the ABI or aborts: every entry returns a status and
// records a message for last_error().
//
// Ordering: a context has one non-blocking stream, on which its kernels run; buffer reads
// and writes are queued on that same stream (cudaMemcpyAsync + cudaStreamSynchronize), so
// they come after the kernels before them. (A plain cudaMemcpy runs on the legacy default
// stream, which a non-blocking stream does not wait for: a read could see the buffer before
// the kernel that writes it had run. The emulation build's lazy streams make that visible:
// cuda/test/api_test.cc.)
#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <set>
#include <string>

#include "../../common/kv_layout.h"
#include "../kernels/kernels.h"
#include "internal.h"
#include "jukebox_cuda.h"

#ifndef JB_CUDA_ARCHS
#define JB_CUDA_ARCHS "unknown"
#endif
#ifndef JB_CUDA_MIN_CC
#define JB_CUDA_MIN_CC 80
#endif

// struct jb_cuda_context and jb_cuda_buffer: internal.h (shared with the model entries).

namespace jb {
namespace cuda {

namespace {
thread_local std::string t_last_error;

std::string mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / (1024.0 * 1024.0));
  return buf;
}
}  // namespace

int fail(int status, const std::string& msg) {
  try {
    t_last_error = msg;
  } catch (...) {
  }
  return status;
}

void clear_error() { t_last_error.clear(); }

int fail_cuda(cudaError_t err, const std::string& what) {
  int status;
  switch (err) {
    case cudaErrorInsufficientDriver:
    case cudaErrorCallRequiresNewerDriver:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorCompatNotSupportedOnDevice:
      status = JB_CUDA_ERR_NO_DRIVER;
      break;
    case cudaErrorNoDevice:
    case cudaErrorInvalidDevice:
    case cudaErrorDevicesUnavailable:
      status = JB_CUDA_ERR_NO_DEVICE;
      break;
    case cudaErrorMemoryAllocation:
      status = JB_CUDA_ERR_OUT_OF_MEMORY;
      break;
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
    case cudaErrorInvalidKernelImage:
      status = JB_CUDA_ERR_UNSUPPORTED_DEVICE;
      break;
    case cudaErrorInvalidValue:
      status = JB_CUDA_ERR_INVALID_ARGUMENT;
      break;
    default:
      status = JB_CUDA_ERR_CUDA;
  }
  (void)cudaGetLastError();  // clear the sticky-free error state of this thread
  return fail(status, what + ": " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
}

namespace {

const char* build_info() {
  static const std::string s = [] {
    char buf[200];
#if defined(JB_CUDA_EMULATED)
    std::snprintf(buf, sizeof buf, "cuda (emulated on the CPU): the CUDA %d.%d sources built with %s against cuda/emu, not a GPU",
                  CUDART_VERSION / 1000, (CUDART_VERSION % 1000) / 10,
#if defined(__clang__)
                  "clang " __clang_version__
#elif defined(__GNUC__)
                  "g++ " __VERSION__
#else
                  "a host C++ compiler"
#endif
    );
#else
    std::snprintf(buf, sizeof buf, "CUDA %d.%d; architectures %s", CUDART_VERSION / 1000, (CUDART_VERSION % 1000) / 10,
                  JB_CUDA_ARCHS);
#endif
    return std::string(buf);
  }();
  return s.c_str();
}

uint64_t capabilities() {
  uint64_t caps = JB_CUDA_CAP_SELF_TEST | JB_CUDA_CAP_MEMORY | JB_CUDA_CAP_ATTN_DECODE;
  if (prior_model_implemented()) caps |= JB_CUDA_CAP_PRIOR_MODEL;
  if (vqvae_model_implemented()) caps |= JB_CUDA_CAP_VQVAE_MODEL;
#if defined(JB_CUDA_EMULATED)
  caps |= JB_CUDA_CAP_EMULATED;
#endif
  return caps;
}

int versions(int* runtime_version, int* driver_version) {
  clear_error();
  if (runtime_version) {
    *runtime_version = 0;
    cudaError_t e = cudaRuntimeGetVersion(runtime_version);
    if (e != cudaSuccess) return fail_cuda(e, "cudaRuntimeGetVersion");
  }
  if (driver_version) {
    *driver_version = 0;
    cudaError_t e = cudaDriverGetVersion(driver_version);  // 0 without a driver
    if (e != cudaSuccess) return fail_cuda(e, "cudaDriverGetVersion");
  }
  return JB_CUDA_OK;
}

int device_count(int* count) {
  clear_error();
  if (!count) return fail(JB_CUDA_ERR_INVALID_ARGUMENT, "device_count: null output");
  *count = 0;
  cudaError_t e = cudaGetDeviceCount(count);
  if (e != cudaSuccess) {
    *count = 0;
    return fail_cuda(e, "cudaGetDeviceCount");
  }
  if (*count == 0) return fail(JB_CUDA_ERR_NO_DEVICE, "cudaGetDeviceCount: no CUDA device");
  return JB_CUDA_OK;
}

int device_info(int device, jb_cuda_device_info* out) {
  clear_error();
  if (!out) return fail(JB_CUDA_ERR_INVALID_ARGUMENT, "device_info: null output");
  std::memset(out, 0, sizeof *out);
  out->index = device;
  cudaDeviceProp p;
  cudaError_t e = cudaGetDeviceProperties(&p, device);
  if (e != cudaSuccess) return fail_cuda(e, "cudaGetDeviceProperties(" + std::to_string(device) + ")");
  std::snprintf(out->name, sizeof out->name, "%s", p.name);
  out->cc_major = p.major;
  out->cc_minor = p.minor;
  out->multiprocessors = p.multiProcessorCount;
  out->total_bytes = p.totalGlobalMem;
  out->free_bytes = 0;  // needs a context: memory_info()
  // SASS for sm_80/86/89/90 runs on any later minor of the same major; the compute_90 PTX
  // JIT-compiles for anything newer. Older than the lowest architecture: no image.
  out->supported = p.major * 10 + p.minor >= JB_CUDA_MIN_CC ? 1 : 0;
  return JB_CUDA_OK;
}

int self_test(int device) {
  clear_error();
  try {
    return run_self_test(device);
  } catch (const std::exception& ex) {
    return fail(JB_CUDA_ERR_CUDA, std::string("self-test: ") + ex.what());
  }
}

const char* last_error() { return t_last_error.c_str(); }

int context_create(int device, jb_cuda_context** out) {
  clear_error();
  if (!out) return fail(JB_CUDA_ERR_INVALID_ARGUMENT, "context_create: null output");
  *out = nullptr;
  jb_cuda_context* ctx = new (std::nothrow) jb_cuda_context;
  if (!ctx) return fail(JB_CUDA_ERR_OUT_OF_MEMORY, "context_create: out of host memory");
  ctx->device = device;
  cudaDeviceProp p;
  cudaError_t e = cudaGetDeviceProperties(&p, device);
  if (e == cudaSuccess) {
    ctx->device_name = p.name;
    ctx->multiprocessors = p.multiProcessorCount > 0 ? p.multiProcessorCount : 1;
    e = cudaSetDevice(device);
  }
  if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking);
  if (e != cudaSuccess) {
    delete ctx;
    return fail_cuda(e, "creating a context on CUDA device " + std::to_string(device));
  }
  *out = ctx;
  return JB_CUDA_OK;
}

void buffer_free(jb_cuda_buffer* buf) {
  if (!buf) return;
  jb_cuda_context* ctx = buf->ctx;
  {
    std::lock_guard<std::mutex> lock(ctx->mutex);
    ctx->buffers.erase(buf);
    ctx->bytes -= buf->bytes;
  }
  cudaSetDevice(ctx->device);
  cudaFree(buf->ptr);
  delete buf;
}

void context_destroy(jb_cuda_context* ctx) {
  if (!ctx) return;
  cudaSetDevice(ctx->device);
  if (ctx->stream) cudaStreamSynchronize(ctx->stream);
  // The models first (each frees its own device memory and leaves the list).
  for (;;) {
    jb_cuda_prior* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(ctx->mutex);
      if (ctx->priors.empty()) break;
      p = *ctx->priors.begin();
    }
    prior_free(p);
  }
  for (;;) {
    jb_cuda_vqvae* v = nullptr;
    {
      std::lock_guard<std::mutex> lock(ctx->mutex);
      if (ctx->vqvaes.empty()) break;
      v = *ctx->vqvaes.begin();
    }
    vqvae_free(v);
    std::lock_guard<std::mutex> lock(ctx->mutex);
    ctx->vqvaes.erase(v);  // in case vqvae_free does not take itself off the list
  }
  for (jb_cuda_buffer* b : ctx->buffers) {
    cudaFree(b->ptr);
    delete b;
  }
  ctx->buffers.clear();
  if (ctx->work) cudaFree(ctx->work);
  if (ctx->stream) cudaStreamDestroy(ctx->stream);
  delete ctx;
}

int buffer_alloc(jb_cuda_context* ctx, size_t bytes, const char* what, jb_cuda_buffer** out) {
  clear_error();
  if (!ctx || !out) return fail(JB_CUDA_ERR_INVALID_ARGUMENT, "buffer_alloc: null context or output");
  *out = nullptr;
  const std::string name = what ? what : "a buffer";
  try {
    cudaError_t e = cudaSetDevice(ctx->device);
    if (e != cudaSuccess) return fail_cuda(e, "selecting CUDA device " + std::to_string(ctx->device));
    void* p = nullptr;
    e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      return fail(JB_CUDA_ERR_OUT_OF_MEMORY,
                  "out of GPU memory allocating " + mib(bytes) + " for " + name + " on " + ctx->device_name + " (" +
                      mib(free_b) + " free of " + mib(total_b) + "; this model holds " + mib(ctx->bytes) + ")");
    }
    if (e != cudaSuccess) return fail_cuda(e, "allocating " + mib(bytes) + " for " + name);
    jb_cuda_buffer* b = new jb_cuda_buffer;
    b->ctx = ctx;
    b->ptr = p;
    b->bytes = bytes;
    b->what = name;
    std::lock_guard<std::mutex> lock(ctx->mutex);
    ctx->buffers.insert(b);
    ctx->bytes += bytes;
    *out = b;
    return JB_CUDA_OK;
  } catch (const std::bad_alloc&) {
    return fail(JB_CUDA_ERR_OUT_OF_MEMORY, "out of host memory allocating the record of " + name);
  }
}

int buffer_write(jb_cuda_buffer* buf, size_t offset, const void* src, size_t bytes) {
  clear_error();
  if (!buf || (!src && bytes) || offset > buf->bytes || bytes > buf->bytes - offset)
    return fail(JB_CUDA_ERR_INVALID_ARGUMENT, "buffer_write: out of bounds");
  cudaSetDevice(buf->ctx->device);
  cudaError_t e = cudaMemcpyAsync(static_cast<char*>(buf->ptr) + offset, src, bytes, cudaMemcpyHostToDevice, buf->ctx->stream);
  if (e == cudaSuccess) e = cudaStreamSynchronize(buf->ctx->stream);  // src may be reused once this returns
  return e == cudaSuccess ? JB_CUDA_OK : fail_cuda(e, "copying to " + buf->what);
}

int buffer_read(const jb_cuda_buffer* buf, size_t offset, void* dst, size_t bytes) {
  clear_error();
  if (!buf || (!dst && bytes) || offset > buf->bytes || bytes > buf->bytes - offset)
    return fail(JB_CUDA_ERR_INVALID_ARGUMENT, "buffer_read: out of bounds");
  cudaSetDevice(buf->ctx->device);
  cudaError_t e = cudaMemcpyAsync(dst, static_cast<const char*>(buf->ptr) + offset, bytes, cudaMemcpyDeviceToHost, buf->ctx->stream);
  if (e == cudaSuccess) e = cudaStreamSynchronize(buf->ctx->stream);
  return e == cudaSuccess ? JB_CUDA_OK : fail_cuda(e, "copying from " + buf->what);
}

int memory_info(jb_cuda_context* ctx, uint64_t* ctx_bytes, uint64_t* free_bytes, uint64_t* total_bytes) {
  clear_error();
  if (!ctx) return fail(JB_CUDA_ERR_INVALID_ARGUMENT, "memory_info: null context");
  size_t f = 0, t = 0;
  cudaSetDevice(ctx->device);
  cudaError_t e = cudaMemGetInfo(&f, &t);
  if (e != cudaSuccess) return fail_cuda(e, "cudaMemGetInfo");
  if (free_bytes) *free_bytes = f;
  if (total_bytes) *total_bytes = t;
  if (ctx_bytes) {
    std::lock_guard<std::mutex> lock(ctx->mutex);
    *ctx_bytes = ctx->bytes;
  }
  return JB_CUDA_OK;
}

int synchronize(jb_cuda_context* ctx) {
  clear_error();
  if (!ctx) return fail(JB_CUDA_ERR_INVALID_ARGUMENT, "synchronize: null context");
  cudaSetDevice(ctx->device);
  cudaError_t e = cudaStreamSynchronize(ctx->stream);
  return e == cudaSuccess ? JB_CUDA_OK : fail_cuda(e, "synchronizing the stream");
}

// `what` of a buffer the kernel reads or writes is big enough and belongs to ctx.
bool buffer_fits(jb_cuda_context* ctx, const jb_cuda_buffer* b, size_t bytes, const char* what, std::string& why) {
  if (!b) {
    why = std::string(what) + " is null";
    return false;
  }
  if (b->ctx != ctx) {
    why = std::string(what) + " (" + b->what + ") belongs to another context";
    return false;
  }
  if (b->bytes < bytes) {
    why = std::string(what) + " (" + b->what + ") holds " + std::to_string(b->bytes) + " bytes; " + std::to_string(bytes) + " are needed";
    return false;
  }
  return true;
}

int attention_decode(jb_cuda_context* ctx, const jb_cuda_attn_decode_args* a) {
  clear_error();
  if (!ctx || !a) return fail(JB_CUDA_ERR_INVALID_ARGUMENT, "attention_decode: null context or arguments");
  gpu::AttnGeom g;
  g.func = a->func;
  g.len = a->len;
  g.block_ctx = a->block_ctx;
  g.prime_len = a->prime_len;
  g.enc_len = a->enc_len;
  if (!gpu::attn_func_supported(a->func) || a->samples < 1 || a->heads < 1 || a->head_dim < 1 || a->len < 1 || a->block_ctx < 1 ||
      a->len % a->block_ctx != 0 || a->pos < 0 || a->pos >= a->len || a->prime_len < 0 || a->enc_len < 0 || (a->func == 6 && a->enc_len < 1))
    return fail(JB_CUDA_ERR_INVALID_ARGUMENT, "attention_decode: invalid geometry (type " + std::to_string(a->func) + ", len " +
                                                  std::to_string(a->len) + ", block_ctx " + std::to_string(a->block_ctx) + ", pos " +
                                                  std::to_string(a->pos) + ")");
  const size_t st = size_t(a->heads) * a->head_dim;
  const size_t rows_bytes = size_t(a->samples) * st * sizeof(float);
  const size_t cache_bytes = gpu::kv_elements(g, a->samples, a->heads, a->head_dim) * 2;
  std::string why;
  if (!buffer_fits(ctx, a->q, rows_bytes, "q", why) || !buffer_fits(ctx, a->out, rows_bytes, "out", why) ||
      !buffer_fits(ctx, a->k_cache, cache_bytes, "k_cache", why) || !buffer_fits(ctx, a->v_cache, cache_bytes, "v_cache", why))
    return fail(JB_CUDA_ERR_INVALID_ARGUMENT, "attention_decode: " + why);
  cudaError_t e = cudaSetDevice(ctx->device);
  if (e != cudaSuccess) return fail_cuda(e, "selecting CUDA device " + std::to_string(ctx->device));
  const int blocks_wanted = 2 * ctx->multiprocessors;
  const size_t need = cuda::attn_decode_workspace_floats(g, a->pos, a->samples, a->heads, a->head_dim, blocks_wanted);
  if (need > ctx->work_floats) {
    if (ctx->work) cudaFree(ctx->work);  // waits for the kernels that used it
    ctx->work = nullptr;
    ctx->work_floats = 0;
    void* p = nullptr;
    e = cudaMalloc(&p, need * sizeof(float));
    if (e == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      return fail(JB_CUDA_ERR_OUT_OF_MEMORY, "out of GPU memory allocating " + mib(need * sizeof(float)) + " for the attention workspace on " +
                                                 ctx->device_name);
    }
    if (e != cudaSuccess) return fail_cuda(e, "allocating the attention workspace");
    ctx->work = static_cast<float*>(p);
    ctx->work_floats = need;
  }
  e = cuda::attn_decode(g, a->pos, a->samples, a->heads, a->head_dim, static_cast<const float*>(a->q->ptr), int(st),
                        static_cast<const __half*>(a->k_cache->ptr), static_cast<const __half*>(a->v_cache->ptr), static_cast<float*>(a->out->ptr),
                        ctx->work, blocks_wanted, ctx->stream);
  return e == cudaSuccess ? JB_CUDA_OK : fail_cuda(e, "attention_decode");
}

const jb_cuda_api kApi = {
    JB_CUDA_API_VERSION,
    sizeof(jb_cuda_api),
    build_info,
    capabilities,
    versions,
    device_count,
    device_info,
    self_test,
    last_error,
    context_create,
    context_destroy,
    buffer_alloc,
    buffer_free,
    buffer_write,
    buffer_read,
    memory_info,
    synchronize,
    attention_decode,
    prior_create,
    prior_free,
    prior_bytes,
    prior_window,
    prior_forward,
    vqvae_create,
    vqvae_free,
    vqvae_decode,
};

}  // namespace
}  // namespace cuda
}  // namespace jb

extern "C" {

JB_CUDA_EXPORT uint32_t jb_cuda_api_version(void) { return JB_CUDA_API_VERSION; }

JB_CUDA_EXPORT const jb_cuda_api* jb_cuda_get_api(uint32_t version) {
  return version == JB_CUDA_API_VERSION ? &jb::cuda::kApi : nullptr;
}

}  // extern "C"
