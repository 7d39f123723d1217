#include "attention.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../core/error.h"
#include "vec.h"

namespace jb {

bool attention_func_supported(int func) {
  return func == 0 || func == 1 || func == 2 || func == 3 || func == 6 || func == 7;
}

namespace {

// The original multiplies q.k by scale*scale with scale = 1/sqrt(sqrt(head_dim)).
float score_scale(int head_dim) {
  const double s = 1.0 / std::sqrt(std::sqrt(double(head_dim)));
  return float(s * s);
}

// Visible keys of query i as an arithmetic range [first, last] with step, or empty.
struct KeyRange {
  int first = 0, last = -1, step = 1;
  bool zero_output = false;  // previous-block attention in block 0
};

KeyRange visible_keys(const AttnShape& s, int i) {
  KeyRange r;
  const int bc = s.block_ctx;
  switch (s.func) {
    case 0: r.first = 0; r.last = i; break;
    case 1: r.first = (i / bc) * bc; r.last = i; break;
    case 2: r.first = i % bc; r.last = i; r.step = bc; break;
    case 3:
      if (i / bc == 0) {
        r.zero_output = true;
      } else {
        r.first = (i / bc - 1) * bc;
        r.last = r.first + bc - 1;
      }
      break;
    case 6: r.first = 0; r.last = s.enc_len - 1; break;
    case 7: r.first = 0; r.last = std::min(i, s.prime_len - 1); break;
    default: fail("ERR_HPARAMS", "attention type " + std::to_string(s.func) + " is not supported");
  }
  return r;
}

void check_shape(const AttnShape& s) {
  require(attention_func_supported(s.func), "ERR_HPARAMS",
          "attention type " + std::to_string(s.func) + " is not supported (no official model uses it)");
  require(s.len > 0 && s.heads > 0 && s.head_dim > 0 && s.block_ctx > 0, "ERR_NATIVE", "bad attention shape");
  require(s.func != 6 || s.enc_len > 0, "ERR_NATIVE", "encoder-decoder attention needs encoder positions");
  require(s.func != 7 || s.prime_len > 0, "ERR_NATIVE", "prime attention needs a prime length");
}

}  // namespace

void attention_forward(const AttnShape& s, const float* q, int ldq, const float* k, int ldk,
                       const float* v, int ldv, float* out, int ldo, ThreadPool& pool,
                       float* record, int record_head) {
  check_shape(s);
  const float scale = score_scale(s.head_dim);
  const int dh = s.head_dim;
  const int max_keys = s.func == 6 ? s.enc_len : s.len;
  constexpr int kRowsPerTask = 16;
  const int row_tasks = (s.len + kRowsPerTask - 1) / kRowsPerTask;
  // Cost: (query, visible key) pairs x heads x (dot + axpy over head_dim, ~4 dh FLOPs, plus
  // an exp counted as ~16).
  double pairs = 0;
  const double L = s.len, bc = s.block_ctx;
  switch (s.func) {
    case 0: pairs = L * (L + 1) / 2; break;
    case 1: pairs = L * (bc + 1) / 2; break;
    case 2: pairs = L * (L / bc + 1) / 2; break;
    case 3: pairs = L * bc; break;
    case 6: pairs = L * s.enc_len; break;
    default: pairs = L * std::min<double>(s.prime_len, L); break;
  }
  const double flops = pairs * s.heads * (4.0 * dh + 16.0);
  std::vector<std::vector<float>> scratch(pool.size(), std::vector<float>(max_keys + dh));
  const DotFn dot = active_dot();
  const AxpyFn axpy = active_axpy();
  pool.parallel_for(row_tasks * s.heads, flops, [&](int task, int worker) {
    const int h = task % s.heads;
    const int i0 = (task / s.heads) * kRowsPerTask, i1 = std::min(s.len, i0 + kRowsPerTask);
    float* w = scratch[worker].data();
    float* acc = w + max_keys;
    for (int i = i0; i < i1; ++i) {
      float* o = out + size_t(i) * ldo + size_t(h) * dh;
      const KeyRange r = visible_keys(s, i);
      float* rec = record && h == record_head ? record + size_t(i) * max_keys : nullptr;
      if (rec) std::fill(rec, rec + max_keys, 0.0f);
      if (r.zero_output || r.last < r.first) {
        std::fill(o, o + dh, 0.0f);
        continue;
      }
      const float* qi = q + size_t(i) * ldq + size_t(h) * dh;
      int n = 0;
      float mx = -INFINITY;
      for (int j = r.first; j <= r.last; j += r.step, ++n) {
        w[n] = dot(qi, k + size_t(j) * ldk + size_t(h) * dh, dh) * scale;
        mx = std::max(mx, w[n]);
      }
      float sum = 0.0f;
      for (int t = 0; t < n; ++t) {
        w[t] = std::exp(w[t] - mx);
        sum += w[t];
      }
      const float inv = 1.0f / sum;
      std::fill(acc, acc + dh, 0.0f);
      n = 0;
      for (int j = r.first; j <= r.last; j += r.step, ++n) {
        const float p = w[n] * inv;
        if (rec) rec[j] = p;
        axpy(p, v + size_t(j) * ldv + size_t(h) * dh, acc, dh);
      }
      std::copy(acc, acc + dh, o);
    }
  });
}

void attention_ref(const AttnShape& s, const float* q, int ldq, const float* k, int ldk,
                   const float* v, int ldv, float* out, int ldo) {
  check_shape(s);
  const double scale = score_scale(s.head_dim);
  const int keys = s.func == 6 ? s.enc_len : s.len;
  const int bc = s.block_ctx;
  std::vector<double> w(keys);
  for (int h = 0; h < s.heads; ++h)
    for (int i = 0; i < s.len; ++i) {
      double* o_acc = nullptr;
      std::vector<double> acc(s.head_dim, 0.0);
      o_acc = acc.data();
      // Every key gets a score; masked ones become -1e9 as in the original's _attn.
      double mx = -1e300;
      for (int j = 0; j < keys; ++j) {
        bool visible;
        switch (s.func) {
          case 0: visible = j <= i; break;
          case 1: visible = j / bc == i / bc && j <= i; break;
          case 2: visible = j % bc == i % bc && j <= i; break;
          case 3: visible = j / bc == i / bc - 1; break;
          case 6: visible = true; break;
          default: visible = j < s.prime_len && j <= i; break;
        }
        double dot = 0;
        for (int d = 0; d < s.head_dim; ++d)
          dot += double(q[size_t(i) * ldq + h * s.head_dim + d]) * k[size_t(j) * ldk + h * s.head_dim + d];
        w[j] = visible ? dot * scale : -1e9;
        mx = std::max(mx, w[j]);
      }
      // Previous-block attention in block 0 attends to bc zero keys with zero values.
      const bool zero = s.func == 3 && i / bc == 0;
      double sum = 0;
      for (int j = 0; j < keys; ++j) sum += (w[j] = std::exp(w[j] - mx));
      for (int j = 0; j < keys && !zero; ++j)
        for (int d = 0; d < s.head_dim; ++d) o_acc[d] += w[j] / sum * v[size_t(j) * ldv + h * s.head_dim + d];
      for (int d = 0; d < s.head_dim; ++d) out[size_t(i) * ldo + h * s.head_dim + d] = float(o_acc[d]);
    }
}

}  // namespace jb
