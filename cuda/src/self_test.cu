// The self-test kernel behind jb_cuda_api::self_test: each thread takes one query of a
// small block-sparse layer and computes its key count and an online-softmax reduction over
// the keys it sees with the cuda/common helpers (so those compile and run as device code);
// the host computes the same with the same helpers and compares.
#include <cuda_runtime.h>

#include <cmath>
#include <string>
#include <vector>

#include "../../common/attn_index.h"
#include "../../common/kv_layout.h"
#include "../common/online_softmax.h"
#include "internal.h"
#include "../common/jb_launch.h"

namespace jb {
namespace cuda {

namespace {

constexpr int kLen = 64;

struct Result {
  int count;
  int first_row;
  float value;  // softmax-weighted mean of the key positions, with scores -|i - j| / 4
};

JB_HD Result query_result(const gpu::AttnGeom& g, int i) {
  const gpu::KeySpan s = gpu::visible_keys(g, i);
  const gpu::KVRun run = gpu::kv_run(g, i);
  gpu::SoftmaxPartial st = gpu::softmax_empty();
  float acc = 0.0f;
  for (int t = 0; t < s.count; ++t) {
    const int j = s.at(t);
    const float v = float(j);
    gpu::SoftmaxPartial one = gpu::softmax_empty();
    float acc_one = 0.0f;
    gpu::softmax_push(one, &acc_one, -fabsf(float(i - j)) * 0.25f, &v, 1);
    gpu::softmax_merge(st, &acc, one, &acc_one, 1);
  }
  float out = 0.0f;
  gpu::softmax_finish(st, &acc, &out, 1);
  return Result{s.count, run.first_row, out};
}

__global__ void self_test_kernel(gpu::AttnGeom g, Result* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < g.len) out[i] = query_result(g, i);
}

}  // namespace

int run_self_test(int device) {
  cudaError_t e = cudaSetDevice(device);
  if (e != cudaSuccess) return fail_cuda(e, "self-test: selecting device " + std::to_string(device));
  Result* d_out = nullptr;
  e = cudaMalloc(&d_out, sizeof(Result) * kLen);
  if (e != cudaSuccess) return fail_cuda(e, "self-test: allocating 1 KiB");
  int status = JB_CUDA_OK;
  for (int func : {0, 1, 2, 3, 7}) {
    gpu::AttnGeom g;
    g.func = func;
    g.len = kLen;
    g.block_ctx = 8;
    g.prime_len = 20;
    JB_LAUNCH(self_test_kernel, 1, kLen, 0, 0)(g, d_out);
    e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    std::vector<Result> got(kLen);
    if (e == cudaSuccess) e = cudaMemcpy(got.data(), d_out, sizeof(Result) * kLen, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) {
      status = fail_cuda(e, "self-test kernel (attention type " + std::to_string(func) + ")");
      break;
    }
    for (int i = 0; i < kLen && status == JB_CUDA_OK; ++i) {
      const Result want = query_result(g, i);
      if (got[i].count != want.count || got[i].first_row != want.first_row ||
          std::fabs(got[i].value - want.value) > 1e-4f * (1.0f + std::fabs(want.value))) {
        status = fail(JB_CUDA_ERR_CUDA, "self-test mismatch: attention type " + std::to_string(func) + " query " +
                                            std::to_string(i) + ": device " + std::to_string(got[i].value) +
                                            ", host " + std::to_string(want.value));
      }
    }
    if (status != JB_CUDA_OK) break;
  }
  cudaFree(d_out);
  return status;
}

}  // namespace cuda
}  // namespace jb
