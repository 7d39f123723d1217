#include "cuda_stack.h"

#include <string>

#include "weights.h"

namespace jb {

CudaVQLevelWeights cuda_stack_weights(const Napi::Object& stack, const std::vector<float>& codebook, int bins, int width, int hop,
                              const MappedFile* file) {
  CudaVQLevelWeights w;
  w.codebook = codebook;
  w.bins = bins;
  w.emb_width = width;
  w.hop = hop;
  w.out_channels = get_int(stack, "outChannels");
  Napi::Array layers = stack.Get("layers").As<Napi::Array>();
  w.arrays.reserve(size_t(layers.Length()) * 4);
  auto conv = [&](const Napi::Object& o) {
    const ConvParams p = conv_params(o);
    const std::string name = o.Get("name").IsString() ? o.Get("name").ToString().Utf8Value() : "conv";
    jb_cuda_conv_desc c{};
    c.cin = p.cin;
    c.cout = p.cout;
    c.kernel = p.kernel;
    c.stride = p.stride;
    c.pad = p.pad;
    c.dilation = p.dilation;
    c.transposed = p.transposed ? 1 : 0;
    w.arrays.push_back(read_weight(o.Get("weight"), file, size_t(p.cin) * p.cout * p.kernel, name + ".weight"));
    c.w = w.arrays.back().data();
    w.arrays.push_back(read_weight(o.Get("bias"), file, size_t(p.cout), name + ".bias"));
    c.b = w.arrays.back().data();
    return c;
  };
  for (uint32_t i = 0; i < layers.Length(); ++i) {
    Napi::Object l = layers.Get(i).As<Napi::Object>();
    jb_cuda_vq_layer_desc d{};
    const std::string kind = l.Get("kind").ToString().Utf8Value();
    if (kind == "conv") {
      d.a = conv(l.Get("conv").As<Napi::Object>());
    } else {
      d.residual = 1;
      d.res_scale = float(get_number_or(l, "scale", 1.0));
      d.a = conv(l.Get("a").As<Napi::Object>());
      d.b = conv(l.Get("b").As<Napi::Object>());
    }
    w.layers.push_back(d);
  }
  return w;
}

int stack_upsampling(const Napi::Object& stack) {
  Napi::Array layers = stack.Get("layers").As<Napi::Array>();
  long up = 1, down = 1;
  for (uint32_t i = 0; i < layers.Length(); ++i) {
    Napi::Object l = layers.Get(i).As<Napi::Object>();
    if (l.Get("kind").ToString().Utf8Value() != "conv") continue;  // residual blocks keep the length
    const ConvParams p = conv_params(l.Get("conv").As<Napi::Object>());
    (p.transposed ? up : down) *= p.stride;
  }
  require(up % down == 0, "ERR_HPARAMS", "a conditioner stack that does not upsample by a whole factor");
  return int(up / down);
}

}  // namespace jb
