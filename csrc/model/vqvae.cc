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

Buffer<float> run_stack(const VQStack& s, Buffer<float> x, int n, int& c, int& t, ThreadPool& pool,
                        Progress& progress) {
  Buffer<float> y, h;
  for (const auto& layer : s.layers) {
    const ConvParams& pa = layer.a->params();
    const int ta = pa.out_len(t);
    require(ta > 0, "ERR_INVALID_ARGUMENT",
            "input too short for the VQ-VAE: a layer would produce " + std::to_string(ta) +
                " time steps from " + std::to_string(t));
    if (layer.kind == VQLayer::Kind::Conv) {
      y.reset(size_t(n) * pa.cout * ta, "VQ-VAE activations");
      layer.a->forward({x.data(), n, c, t}, {y.data(), n, pa.cout, ta}, {}, pool);
      const double flops = layer.a->flops(n, t);
      std::swap(x, y);
      c = pa.cout;
      t = ta;
      progress.step(flops);
      continue;
    }
    // Residual block: h = conv_a(relu(x)); x += scale * conv_b(relu(h)). In place on x.
    if (h.size() < size_t(n) * pa.cout * ta) h.reset(size_t(n) * pa.cout * ta, "VQ-VAE activations");
    ConvEpilogue relu_in;
    relu_in.relu_input = true;
    layer.a->forward({x.data(), n, c, t}, {h.data(), n, pa.cout, ta}, relu_in, pool);
    ConvEpilogue residual = relu_in;
    residual.accumulate = true;
    residual.scale = layer.res_scale;
    layer.b->forward({h.data(), n, pa.cout, ta}, {x.data(), n, c, t}, residual, pool);
    progress.step(layer.a->flops(n, t) + layer.b->flops(n, ta));
  }
  return x;
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
  for (int l = start; l < end; ++l) {
    Buffer<float> buf(size_t(n) * t, "VQ-VAE input");
    std::copy(x, x + size_t(n) * t, buf.data());
    int c = 1, tl = t;
    buf = run_stack(encoders_[l], std::move(buf), n, c, tl, pool, progress);
    const Codebook& cb = codebooks_[l];
    require(c == cb.width(), "ERR_HPARAMS", "encoder output width does not match the codebook");
    // NCT -> (n*t, width) rows for the search.
    Buffer<float> rows(size_t(n) * tl * c, "VQ-VAE latents");
    for (int b = 0; b < n; ++b)
      for (int ch = 0; ch < c; ++ch) {
        const float* src = buf.data() + (size_t(b) * c + ch) * tl;
        for (int i = 0; i < tl; ++i) rows[(size_t(b) * tl + i) * c + ch] = src[i];
      }
    std::vector<int32_t> codes(size_t(n) * tl);
    vq_nearest(cb, rows.data(), n * tl, codes.data(), pool);
    progress.step(2.0 * n * tl * cb.bins() * cb.width());
    out.push_back(std::move(codes));
  }
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
  // Dequantise: x[b][ch][i] = k[z[b][i]][ch].
  Buffer<float> x(size_t(n) * w * t_level, "VQ-VAE latents");
  for (int b = 0; b < n; ++b)
    for (int i = 0; i < t_level; ++i) {
      const float* k = cb.row(z[size_t(b) * t_level + i]);
      for (int ch = 0; ch < w; ++ch) x[(size_t(b) * w + ch) * t_level + i] = k[ch];
    }
  int c = w, t = t_level;
  x = run_stack(decoders_[level], std::move(x), n, c, t, pool, progress);
  require(c == 1, "ERR_HPARAMS", "decoder output must have one channel");
  return x;  // n * t_level * hop samples
}

}  // namespace jb
