#include "vqvae.h"

#include <string>

namespace jb {

double VQStack::flops(int n, int t) const {
  double f = 0;
  for (const auto& layer : layers) {
    f += layer.a->flops(n, t);
    if (layer.kind == VQLayer::Kind::Res) {
      f += layer.b->flops(n, layer.a->params().out_len(t));
    } else {
      t = layer.a->params().out_len(t);
    }
  }
  return f;
}

namespace {

// Largest activation (ping-pong) and residual-hidden sizes over the stack's layers.
void stack_sizes(const VQStack& s, int n, int c, int t, size_t& max_act, size_t& max_hidden) {
  max_act = size_t(n) * c * t;
  max_hidden = 0;
  for (const auto& layer : s.layers) {
    const ConvParams& pa = layer.a->params();
    const int ta = pa.out_len(t);
    require(ta > 0, "ERR_INVALID_ARGUMENT",
            "input too short for the VQ-VAE: a layer would produce " + std::to_string(ta) +
                " time steps from " + std::to_string(t));
    if (layer.kind == VQLayer::Kind::Conv) {
      t = ta;
      max_act = std::max(max_act, size_t(n) * pa.cout * ta);
    } else if (!can_fuse_resblock(*layer.a, *layer.b, t)) {
      // Only unfused residual blocks materialise their hidden activation.
      max_hidden = std::max(max_hidden, size_t(n) * pa.cout * ta);
    }
  }
}

}  // namespace

size_t stack_activation_floats(const VQStack& s, int n, int c, int t) {
  size_t act, hidden;
  stack_sizes(s, n, c, t, act, hidden);
  return 2 * act + hidden;
}

void run_stack(const VQStack& s, VQWorkspace& ws, int n, int& c, int& t, ThreadPool& pool,
               Progress& progress) {
  size_t max_act, max_hidden;
  stack_sizes(s, n, c, t, max_act, max_hidden);
  // The caller has sized ws.x and put the input there.
  require(ws.x.size() >= max_act, "ERR_NATIVE", "workspace input buffer too small");
  VQWorkspace::ensure(ws.y, max_act);
  VQWorkspace::ensure(ws.h, max_hidden);

  for (const auto& layer : s.layers) {
    const ConvParams& pa = layer.a->params();
    const int ta = pa.out_len(t);
    if (layer.kind == VQLayer::Kind::Conv) {
      layer.a->forward({ws.x.data(), n, c, t}, {ws.y.data(), n, pa.cout, ta}, {}, pool);
      const double flops = layer.a->flops(n, t);
      std::swap(ws.x, ws.y);
      c = pa.cout;
      t = ta;
      progress.step(flops);
      continue;
    }
    // Residual block: x + scale * conv_b(relu(conv_a(relu(x)))).
    if (can_fuse_resblock(*layer.a, *layer.b, t)) {
      resblock_forward(*layer.a, *layer.b, layer.res_scale, {ws.x.data(), n, c, t},
                       {ws.y.data(), n, c, t}, pool);
      std::swap(ws.x, ws.y);
      progress.step(layer.a->flops(n, t) + layer.b->flops(n, ta));
      continue;
    }
    // Unfused: h = conv_a(relu(x)); x += scale * conv_b(relu(h)), in place on x.
    ConvEpilogue relu_in;
    relu_in.relu_input = true;
    layer.a->forward({ws.x.data(), n, c, t}, {ws.h.data(), n, pa.cout, ta}, relu_in, pool);
    ConvEpilogue residual = relu_in;
    residual.accumulate = true;
    residual.scale = layer.res_scale;
    layer.b->forward({ws.h.data(), n, pa.cout, ta}, {ws.x.data(), n, c, t}, residual, pool);
    progress.step(layer.a->flops(n, t) + layer.b->flops(n, ta));
  }
}

VQVAE::VQVAE(std::vector<VQStack> encoders, std::vector<VQStack> decoders,
             std::vector<Codebook> codebooks, std::vector<int> hop_lengths)
    : encoders_(std::move(encoders)),
      decoders_(std::move(decoders)),
      codebooks_(std::move(codebooks)),
      hops_(std::move(hop_lengths)) {
  const size_t L = encoders_.size();
  require(L > 0 && decoders_.size() == L && codebooks_.size() == L && hops_.size() == L,
          "ERR_HPARAMS", "VQ-VAE needs one encoder, decoder, codebook and hop length per level");
}

double VQVAE::encode_flops(int n, int t, int start, int end) const {
  double f = 0;
  for (int l = start; l < end; ++l) {
    f += encoders_[l].flops(n, t);
    f += 2.0 * n * (double(t) / hops_[l]) * codebooks_[l].bins() * codebooks_[l].width();
  }
  return f;
}

double VQVAE::decode_flops(int n, int t_level, int level) const {
  return decoders_.at(level).flops(n, t_level);
}

std::vector<std::vector<int32_t>> VQVAE::encode(const float* x, int n, int t, int start, int end,
                                                ThreadPool& pool, Progress& progress) const {
  require(0 <= start && start < end && end <= levels(), "ERR_INVALID_ARGUMENT",
          "invalid level range [" + std::to_string(start) + ", " + std::to_string(end) + ")");
  require(n > 0 && t > 0, "ERR_INVALID_ARGUMENT", "no audio to encode");
  progress.total = encode_flops(n, t, start, end);
  std::vector<std::vector<int32_t>> out;
  std::lock_guard<std::mutex> lock(work_mutex_);
  for (int l = start; l < end; ++l) {
    int c = 1, tl = t;
    size_t act, hidden;
    stack_sizes(encoders_[l], n, c, t, act, hidden);
    VQWorkspace::ensure(work_.x, act);
    std::copy(x, x + size_t(n) * t, work_.x.data());
    run_stack(encoders_[l], work_, n, c, tl, pool, progress);
    const float* buf = work_.x.data();
    const Codebook& cb = codebooks_[l];
    require(c == cb.width(), "ERR_HPARAMS", "encoder output width does not match the codebook");
    // NCT -> (n*t, width) rows for the search.
    Buffer<float> rows(size_t(n) * tl * c, "VQ-VAE latents");
    for (int b = 0; b < n; ++b)
      for (int ch = 0; ch < c; ++ch) {
        const float* src = buf + (size_t(b) * c + ch) * tl;
        for (int i = 0; i < tl; ++i) rows[(size_t(b) * tl + i) * c + ch] = src[i];
      }
    std::vector<int32_t> codes(size_t(n) * tl);
    vq_nearest(cb, rows.data(), n * tl, codes.data(), pool);
    progress.step(2.0 * n * tl * cb.bins() * cb.width());
    out.push_back(std::move(codes));
  }
  work_.trim();
  return out;
}

Buffer<float> VQVAE::decode(const int32_t* z, int n, int t_level, int level,
                                 ThreadPool& pool, Progress& progress) const {
  require(0 <= level && level < levels(), "ERR_INVALID_ARGUMENT",
          "level " + std::to_string(level) + " out of range");
  require(n > 0 && t_level > 0, "ERR_INVALID_ARGUMENT", "no codes to decode");
  const Codebook& cb = codebooks_[level];
  const int w = cb.width();
  for (size_t i = 0; i < size_t(n) * t_level; ++i)
    require(z[i] >= 0 && z[i] < cb.bins(), "ERR_CODES",
            "code " + std::to_string(z[i]) + " at index " + std::to_string(i) + " is outside [0, " +
                std::to_string(cb.bins()) + ") for level " + std::to_string(level));
  progress.total = decode_flops(n, t_level, level);
  std::lock_guard<std::mutex> lock(work_mutex_);
  size_t act, hidden;
  stack_sizes(decoders_[level], n, w, t_level, act, hidden);
  VQWorkspace::ensure(work_.x, act);
  // Dequantise: x[b][ch][i] = k[z[b][i]][ch].
  float* x = work_.x.data();
  for (int b = 0; b < n; ++b)
    for (int i = 0; i < t_level; ++i) {
      const float* k = cb.row(z[size_t(b) * t_level + i]);
      for (int ch = 0; ch < w; ++ch) x[(size_t(b) * w + ch) * t_level + i] = k[ch];
    }
  int c = w, t = t_level;
  run_stack(decoders_[level], work_, n, c, t, pool, progress);
  require(c == 1, "ERR_HPARAMS", "decoder output must have one channel");
  Buffer<float> out(size_t(n) * t, "decoded audio");
  std::copy(work_.x.data(), work_.x.data() + size_t(n) * t, out.data());
  work_.trim();
  return out;
}

}  // namespace jb
