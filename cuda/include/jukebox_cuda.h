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

#define JB_CUDA_API_VERSION 2u
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
  JB_CUDA_ERR_CUDA = 7,               /* any other CUDA error; last_error has cudaGetErrorString */
  JB_CUDA_ERR_ABORTED = 8             /* a window job saw its abort flag set and stopped */
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
#define JB_CUDA_CAP_PRIOR_MODEL (1ull << 10)     /* prior_create / prior_window / prior_forward */
#define JB_CUDA_CAP_VQVAE_MODEL (1ull << 11)     /* vqvae_decoder_create / vqvae_decode */
/* Not a kernel: this library is the emulation build (cuda/emu), which runs the CUDA kernels
 * on the CPU for testing. Its device is named "cuda (emulated on the CPU), ..."; the addon
 * reports it as such and never offers it for generation. */
#define JB_CUDA_CAP_EMULATED (1ull << 63)
#define JB_CUDA_CAPS_GENERATE                                                                 \
  (JB_CUDA_CAP_MEMORY | JB_CUDA_CAP_PRIOR_MODEL | JB_CUDA_CAP_VQVAE_MODEL)

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
 * the key/value rows that position sees (common/kv_layout.h kv_run) of fp16 caches laid
 * out [sample][head][row][head_dim] (kv_rows(geometry) rows; enc-dec: enc_len rows), into
 * out (samples rows of heads * head_dim fp32). Queued on the context's stream: a later
 * buffer_read or synchronize on the context sees the result. */
typedef struct jb_cuda_attn_decode_args {
  int func;                 /* attention type 0,1,2,3,6,7 (common/attn_index.h) */
  int samples, heads, head_dim;
  int len, block_ctx, prime_len, enc_len;
  int pos;                  /* the position being decoded */
  jb_cuda_buffer* q;        /* samples x heads*head_dim, fp32 */
  jb_cuda_buffer* k_cache;  /* fp16, layout of common/kv_layout.h */
  jb_cuda_buffer* v_cache;
  jb_cuda_buffer* out;      /* samples x heads*head_dim, fp32 */
} jb_cuda_attn_decode_args;


/* ---- the model-level ABI (API version 2) ----------------------------------------------
 * The addon hands the library a model once (weights as host pointers into the memory-mapped
 * file, in the dtype the file stores) and then whole jobs: one window of a prior (upload its
 * conditioning, prefill the known prefix, sample or teacher-force the rest, with progress
 * and abort), a full teacher-forced forward, or a VQ-VAE decode. Not op by op: the library
 * keeps activations, KV caches and the decode step's CUDA graph on the device. */

typedef enum jb_cuda_dtype {
  JB_CUDA_DTYPE_F32 = 0,
  JB_CUDA_DTYPE_F16 = 1,
  JB_CUDA_DTYPE_BF16 = 2
} jb_cuda_dtype;

/* A weight matrix as stored in the file. Logical shape (k, n): y = x . W. Stored (k, n)
 * row-major (the original's Conv1D), or (n, k) when `transposed` (nn.Linear, embeddings:
 * x_emb and pos_emb are passed as stored, (rows, width), transposed = 0). data NULL: absent.
 * The library copies it to the device in the same dtype (fp16 stays fp16, fp32 stays fp32). */
typedef struct jb_cuda_matrix {
  const void* data;
  int dtype;       /* jb_cuda_dtype */
  int k, n;
  int transposed;
} jb_cuda_matrix;

/* One transformer layer (jukebox/transformer/transformer.py ResAttnBlock). Vectors are fp32
 * host arrays (biases and LayerNorm parameters; the addon widens them once). */
typedef struct jb_cuda_layer_desc {
  int attn_func;                       /* 0,1,2,3,6,7 (common/attn_index.h) */
  const float *ln0_w, *ln0_b, *ln1_w, *ln1_b;
  jb_cuda_matrix c_attn;   const float* c_attn_b;    /* (w, 3s), or (w, s) for type 6 */
  jb_cuda_matrix c_enc_kv; const float* c_enc_kv_b;  /* type 6 only: (w, 2s) */
  jb_cuda_matrix c_proj;   const float* c_proj_b;    /* (s, w) */
  jb_cuda_matrix mlp_fc;   const float* mlp_fc_b;    /* (w, m) */
  jb_cuda_matrix mlp_proj; const float* mlp_proj_b;  /* (m, w) */
} jb_cuda_layer_desc;

/* An autoregressive prior (jukebox/prior/autoregressive.py): embeddings, transformer, output
 * projection; csrc/model/prior.h is the CPU engine's twin and the reference. */
typedef struct jb_cuda_prior_desc {
  const char* name;          /* for messages (the model file) */
  int width, state, mlp, heads, len, blocks, prime_len, enc_len;
  float res_scale;
  int depth;
  const jb_cuda_layer_desc* layers;  /* depth entries */
  int bins;
  jb_cuda_matrix x_emb;      /* stored (bins, w) */
  jb_cuda_matrix pos_emb;    /* stored (len, w) */
  const float* start_token;  /* (w) fp32, or NULL when windows always pass y_cond */
  jb_cuda_matrix x_out;      /* logical (w, bins), stored (bins, w): transposed = 1 */
  int add_cond_after;        /* !merged_decoder: x_cond added again before x_out */
  int max_samples;           /* the largest n a window will use (sizes KV caches, scratch) */
  int kv_dtype;              /* KV cache: JB_CUDA_DTYPE_F32 (equals the CPU engine) or F16 */
} jb_cuda_prior_desc;

typedef struct jb_cuda_prior jb_cuda_prior;

/* Progress of a job: called on the calling thread between batches of work (every
 * `check_every` tokens of a window, and after each prefill chunk), with done and total in
 * positions (a window: done = prefix positions prefilled + tokens decoded, total = end; a
 * forward: positions of len). Return nonzero to stop: the job returns JB_CUDA_ERR_ABORTED and
 * the model stays usable. */
typedef int (*jb_cuda_progress_fn)(void* user, double done, double total);

/* One window of a prior for n samples. Host arrays; the call returns when the job is done
 * (or failed / aborted: then nothing in `tokens` past the prefix is meaningful). */
typedef struct jb_cuda_window_args {
  int n;                     /* 1 .. max_samples */
  const float* y_cond;       /* n x w start embeddings, or NULL: the model's start_token */
  const float* x_cond;       /* n x x_cond_len x w (x_cond_len len or 1: broadcast), or NULL */
  int x_cond_len;
  const float* encoder_kv;   /* n x enc_len x w lyric encoder output (type 6 layers), or NULL */
  int32_t* tokens;           /* n x len; positions < prefix are read; [prefix, end) are written */
  int prefix, end;           /* 0 <= prefix <= end <= len */
  int prefill_chunk;         /* 0: the prefix in one pass; else chunks of this many positions */
  float temperature;
  int top_k;
  float top_p;               /* top_k and top_p never both set (csrc/cpu/sampling.h) */
  uint64_t seed;             /* Philox(seed; stream, sample_offset + b, t), as the CPU engine */
  uint32_t stream, sample_offset;
  const int32_t* forced;     /* n x len teacher-forced tokens for [prefix, end), or NULL */
  float* prefix_logits;      /* n x prefix x bins, or NULL */
  float* logits;             /* n x (end - prefix) x bins logits of each step, or NULL */
  jb_cuda_progress_fn progress;
  void* progress_user;
  int check_every;           /* tokens between progress calls (0: a default) */
} jb_cuda_window_args;

/* A full teacher-forced forward over a window (the original's z_forward). */
typedef struct jb_cuda_forward_args {
  int n;
  const int32_t* tokens;     /* n x len (the first len - 1 of each row are read) */
  const float* y_cond;
  const float* x_cond;
  int x_cond_len;
  const float* encoder_kv;
  float* out;                /* n x len x bins logits, or n x len x w activations (no x_out) */
  int attn_layer, attn_head; /* attn_layer >= 0: one head's probabilities into attn_out */
  float* attn_out;           /* n x len x keys (keys = enc_len for type 6, else len) */
  jb_cuda_progress_fn progress;
  void* progress_user;
} jb_cuda_forward_args;

/* A VQ-VAE decoder stack (csrc/model/vqvae.h VQStack): codebook lookup, then convolutions
 * and residual blocks in order. Weights are fp32 host arrays, PyTorch layouts: Conv1d
 * (cout, cin, k), ConvTranspose1d (cin, cout, k). */
typedef struct jb_cuda_conv_desc {
  int cin, cout, kernel, stride, pad, dilation, transposed;
  const float* w;
  const float* b;
} jb_cuda_conv_desc;

typedef struct jb_cuda_vq_layer_desc {
  int residual;              /* 0: y = conv_a(x); 1: x + res_scale * conv_b(relu(conv_a(relu(x)))) */
  float res_scale;
  jb_cuda_conv_desc a, b;    /* b only for residual layers */
} jb_cuda_vq_layer_desc;

typedef struct jb_cuda_vqvae_desc {
  const char* name;
  int bins, emb_width;
  const float* codebook;     /* bins x emb_width fp32 */
  int hop;                   /* audio samples per code of this level */
  int out_channels;
  int depth;
  const jb_cuda_vq_layer_desc* layers;
} jb_cuda_vqvae_desc;

typedef struct jb_cuda_vqvae jb_cuda_vqvae;

typedef struct jb_cuda_vq_decode_args {
  int n, t;                  /* n rows of t codes */
  const int32_t* codes;      /* n x t, host */
  float* out;                /* n x out_channels x (t * hop), host (NCT) */
  jb_cuda_progress_fn progress;
  void* progress_user;
} jb_cuda_vq_decode_args;

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

  /* -- models (JB_CUDA_CAP_PRIOR_MODEL, JB_CUDA_CAP_VQVAE_MODEL). A model belongs to the
   *    context it was created in; context_destroy frees its models too. create checks the
   *    bytes it needs against the device's free memory before allocating anything, and an
   *    out-of-memory names the model, the bytes asked and the bytes free. free waits for
   *    the model's work in flight, then releases its device memory at once. One job at a
   *    time per context (calls on one context are serialised by the library). -- */
  int (*prior_create)(jb_cuda_context* ctx, const jb_cuda_prior_desc* desc, jb_cuda_prior** out);
  void (*prior_free)(jb_cuda_prior* prior);
  uint64_t (*prior_bytes)(const jb_cuda_prior* prior);  /* device bytes of weights + caches */
  int (*prior_window)(jb_cuda_prior* prior, const jb_cuda_window_args* args);
  int (*prior_forward)(jb_cuda_prior* prior, const jb_cuda_forward_args* args);
  int (*vqvae_create)(jb_cuda_context* ctx, const jb_cuda_vqvae_desc* desc, jb_cuda_vqvae** out);
  void (*vqvae_free)(jb_cuda_vqvae* vq);
  int (*vqvae_decode)(jb_cuda_vqvae* vq, const jb_cuda_vq_decode_args* args);
} jb_cuda_api;

JB_CUDA_EXPORT uint32_t jb_cuda_api_version(void);
JB_CUDA_EXPORT const jb_cuda_api* jb_cuda_get_api(uint32_t version);

typedef uint32_t (*jb_cuda_api_version_fn)(void);
typedef const jb_cuda_api* (*jb_cuda_get_api_fn)(uint32_t version);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* JUKEBOX_CUDA_H_ */
