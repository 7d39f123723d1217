// The VQ-VAE (jukebox/vqvae): per-level encoders and decoders, each a stack of convs and
// residual blocks, plus one codebook per level. The structure (which layers, in which
// order, with which parameters) is decided by the TypeScript side from the hyperparameters
// (lib/vqvae/layout.ts); this class only runs it.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "../core/buffer.h"
#include "../core/progress.h"
#include "../core/thread_pool.h"
#include "../cpu/conv1d.h"
#include "../cpu/vq.h"

namespace jb {

// One layer of a stack: a conv, or a residual block x + scale * conv_b(relu(conv_a(relu(x)))).
struct VQLayer {
  enum class Kind { Conv, Res } kind = Kind::Conv;
  std::unique_ptr<Conv1d> a, b;  // b only for Res
  float res_scale = 1.0f;
};

struct VQStack {
  int in_channels = 0, out_channels = 0;
  std::vector<VQLayer> layers;
  double flops(int n, int t) const;  // for progress and benchmarks
};

// Activation buffers reused across calls (grow-only): fresh multi-hundred-MB buffers on
// every call would spend a large share of the time page-faulting.
struct VQWorkspace {
  Buffer<float> x, y, h;
  static void ensure(Buffer<float>& b, size_t n) {
    if (b.size() < n) b.reset(n, "VQ-VAE activations");
  }
  // Keeps the buffers for the next call only while they are modest in size.
  void trim(size_t keep_floats = size_t(128) << 20) {  // 512 MB
    if (x.size() + y.size() + h.size() > keep_floats) {
      x.reset(0, "");
      y.reset(0, "");
      h.reset(0, "");
    }
  }
};

class VQVAE {
 public:
  VQVAE(std::vector<VQStack> encoders, std::vector<VQStack> decoders,
        std::vector<Codebook> codebooks, std::vector<int> hop_lengths);

  int levels() const { return int(encoders_.size()); }
  int hop_length(int level) const { return hops_.at(level); }
  int emb_width() const { return codebooks_.at(0).width(); }
  int bins(int level) const { return codebooks_.at(level).bins(); }

  // x: n clips of t samples (mono, NTC == NCT with one channel). Returns, for each level in
  // [start, end), n * t_level codes.
  std::vector<std::vector<int32_t>> encode(const float* x, int n, int t, int start, int end,
                                           ThreadPool& pool, Progress& progress) const;
  // z: n * t_level codes of one level. Returns n * t_level * hop samples.
  Buffer<float> decode(const int32_t* z, int n, int t_level, int level, ThreadPool& pool,
                            Progress& progress) const;

  double encode_flops(int n, int t, int start, int end) const;
  double decode_flops(int n, int t_level, int level) const;

 private:
  std::vector<VQStack> encoders_, decoders_;
  std::vector<Codebook> codebooks_;
  std::vector<int> hops_;
  mutable std::mutex work_mutex_;  // one encode/decode at a time uses the workspace
  mutable VQWorkspace work_;
};

// Runs a stack on ws.x (n, c, t) and leaves the result in ws.x; updates c, t.
void run_stack(const VQStack& s, VQWorkspace& ws, int n, int& c, int& t, ThreadPool& pool,
               Progress& progress);
// Bytes of activations run_stack needs for this input.
size_t stack_activation_floats(const VQStack& s, int n, int c, int t);

}  // namespace jb
