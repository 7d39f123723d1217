/*
 * The C ABI of the CUDA backend library (libjukebox-cuda.so), which the Node addon loads at
 * run time with dlopen (csrc/backend/cuda_loader.cc) so the CPU addon still loads where there
 * is no CUDA. Plain C: the addon includes this header without the CUDA toolkit.
 *
 * The library exports exactly two symbols:
 *   jb_cuda_api_version()    the version of the table below that this build implements;
 *   jb_cuda_get_api(version) the function table for `version`, or NULL if it does not
 *                            implement that version.
 * Every other entry point is reached through the table. Any change to the table, to a struct
 * reachable from it or to the meaning of a call bumps JB_CUDA_API_VERSION; the loader refuses
 * a library whose version differs from the one it was compiled with ("version mismatch").
 *
 * Conventions: every call returns a jb_cuda_status (0 = OK); on failure last_error() gives
 * a message for the calling thread that names what failed (for out-of-memory: what was being
 * allocated, how many bytes, and the device's free memory). No call aborts the process or
 * throws across the ABI.
 */
#ifndef JUKEBOX_CUDA_H_
#define JUKEBOX_CUDA_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JB_CUDA_API_VERSION 1u
#define JB_CUDA_LIBRARY_NAME "libjukebox-cuda.so"

#if defined(_WIN32)
#define JB_CUDA_EXPORT __declspec(dllexport)
#else
#define JB_CUDA_EXPORT __attribute__((visibility("default")))
#endif

typedef enum jb_cuda_status {
  JB_CUDA_OK = 0,
  JB_CUDA_ERR_NO_DRIVER = 1,          /* no NVIDIA driver, or one too old for this CUDA runtime */
  JB_CUDA_ERR_NO_DEVICE = 2,          /* a driver but no CUDA device (or none visible) */
  JB_CUDA_ERR_OUT_OF_MEMORY = 3,      /* device memory exhausted; last_error names what */
  JB_CUDA_ERR_INVALID_ARGUMENT = 4,
  JB_CUDA_ERR_NOT_IMPLEMENTED = 5,    /* an entry of a later milestone (see cuda/README.md) */
  JB_CUDA_ERR_UNSUPPORTED_DEVICE = 6, /* no kernel image for this device's architecture */
  JB_CUDA_ERR_CUDA = 7                /* any other CUDA error; last_error has cudaGetErrorString */
} jb_cuda_status;

/* Capability bits: what this build implements. The addon offers the CUDA backend for
 * generation only when every bit of JB_CUDA_CAPS_GENERATE is set. */
#define JB_CUDA_CAP_SELF_TEST (1ull << 0)
#define JB_CUDA_CAP_MEMORY (1ull << 1)           /* contexts and buffers */
#define JB_CUDA_CAP_GEMM (1ull << 2)             /* fp16-weight GEMV/GEMM, fp32 accumulation */
#define JB_CUDA_CAP_LAYERNORM (1ull << 3)        /* fused LayerNorm */
#define JB_CUDA_CAP_GELU (1ull << 4)             /* bias + quick-GELU */
#define JB_CUDA_CAP_ATTN_DECODE (1ull << 5)      /* decode-step attention over the fp16 KV cache */
#define JB_CUDA_CAP_ATTN_PREFILL (1ull << 6)     /* block-sparse prefill attention */
#define JB_CUDA_CAP_SAMPLING (1ull << 7)         /* temperature/top-k/top-p with Philox */
#define JB_CUDA_CAP_VQ_DECODE (1ull << 8)        /* VQ-VAE decoder convolutions */
#define JB_CUDA_CAP_DECODE_GRAPH (1ull << 9)     /* CUDA graph of the whole decode step */
/* Not a kernel: this library is the emulation build (cuda/emu), which runs the CUDA kernels
 * on the CPU for testing. Its device is named "cuda (emulated on the CPU), ..."; the addon
 * reports it as such and never offers it for generation. */
#define JB_CUDA_CAP_EMULATED (1ull << 63)
#define JB_CUDA_CAPS_GENERATE                                                                 \
  (JB_CUDA_CAP_MEMORY | JB_CUDA_CAP_GEMM | JB_CUDA_CAP_LAYERNORM | JB_CUDA_CAP_GELU |         \
   JB_CUDA_CAP_ATTN_DECODE | JB_CUDA_CAP_ATTN_PREFILL | JB_CUDA_CAP_SAMPLING | JB_CUDA_CAP_VQ_DECODE)

typedef struct jb_cuda_device_info {
  int index;
  char name[256];
  int cc_major, cc_minor;   /* compute capability */
  int multiprocessors;
  uint64_t total_bytes;     /* device memory */
  uint64_t free_bytes;      /* free now (0 when it could not be queried) */
  int supported;            /* 1 when this build has a kernel image (SASS or PTX) for it */
} jb_cuda_device_info;

/* One device, one stream, and every buffer allocated through it (destroy frees them all). */
typedef struct jb_cuda_context jb_cuda_context;
typedef struct jb_cuda_buffer jb_cuda_buffer;

/* Argument blocks of the kernel entries. Tensors live in buffers of the same context.
 * attention_decode (implemented; its layout is now part of the ABI): for each of `samples`
 * and `heads`, the query of position `pos` (q: samples rows of heads * head_dim fp32) over
 * the key/value rows that position sees (cuda/common/kv_layout.h kv_run) of fp16 caches laid
 * out [sample][head][row][head_dim] (kv_rows(geometry) rows; enc-dec: enc_len rows), into
 * out (samples rows of heads * head_dim fp32). Queued on the context's stream: a later
 * buffer_read or synchronize on the context sees the result. */
typedef struct jb_cuda_attn_decode_args {
  int func;                 /* attention type 0,1,2,3,6,7 (cuda/common/attn_index.h) */
  int samples, heads, head_dim;
  int len, block_ctx, prime_len, enc_len;
  int pos;                  /* the position being decoded */
  jb_cuda_buffer* q;        /* samples x heads*head_dim, fp32 */
  jb_cuda_buffer* k_cache;  /* fp16, layout of cuda/common/kv_layout.h */
  jb_cuda_buffer* v_cache;
  jb_cuda_buffer* out;      /* samples x heads*head_dim, fp32 */
} jb_cuda_attn_decode_args;

typedef struct jb_cuda_api {
  uint32_t api_version;     /* == JB_CUDA_API_VERSION of the build */
  uint32_t struct_size;     /* sizeof(jb_cuda_api) of the build */

  /* -- discovery (milestone 0, implemented) -- */
  const char* (*build_info)(void);  /* e.g. "CUDA 13.0; sm_80 sm_86 sm_89 sm_90 (+PTX compute_90)" */
  uint64_t (*capabilities)(void);   /* JB_CUDA_CAP_* bits */
  int (*versions)(int* runtime_version, int* driver_version); /* 13000 = 13.0; driver 0 = none */
  int (*device_count)(int* count);  /* NO_DRIVER / NO_DEVICE explain a zero */
  int (*device_info)(int device, jb_cuda_device_info* out);
  int (*self_test)(int device);     /* runs a kernel using the common helpers, checks on host */
  const char* (*last_error)(void);  /* message of this thread's last failure ("" if none) */

  /* -- memory (milestone 0, implemented). Reads and writes are ordered on the context's
   *    stream after the work queued before them, and return when the copy is done. -- */
  int (*context_create)(int device, jb_cuda_context** out);
  void (*context_destroy)(jb_cuda_context* ctx); /* frees every buffer of ctx at once */
  int (*buffer_alloc)(jb_cuda_context* ctx, size_t bytes, const char* what, jb_cuda_buffer** out);
  void (*buffer_free)(jb_cuda_buffer* buf);      /* NULL is fine */
  int (*buffer_write)(jb_cuda_buffer* buf, size_t offset, const void* src, size_t bytes);
  int (*buffer_read)(const jb_cuda_buffer* buf, size_t offset, void* dst, size_t bytes);
  int (*memory_info)(jb_cuda_context* ctx, uint64_t* ctx_bytes, uint64_t* free_bytes, uint64_t* total_bytes);
  int (*synchronize)(jb_cuda_context* ctx);

  /* -- kernels (JB_CUDA_CAP_ATTN_DECODE) -- */
  int (*attention_decode)(jb_cuda_context* ctx, const jb_cuda_attn_decode_args* args);
} jb_cuda_api;

JB_CUDA_EXPORT uint32_t jb_cuda_api_version(void);
JB_CUDA_EXPORT const jb_cuda_api* jb_cuda_get_api(uint32_t version);

typedef uint32_t (*jb_cuda_api_version_fn)(void);
typedef const jb_cuda_api* (*jb_cuda_get_api_fn)(uint32_t version);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* JUKEBOX_CUDA_H_ */
