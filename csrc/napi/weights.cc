#include "weights.h"

#include "../core/error.h"
#include "../core/half.h"
#include "../model/vqvae.h"

namespace jb {

const float* float32_arg(const Napi::Value& v, size_t expect, const char* what) {
  require(v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array,
          "ERR_INVALID_ARGUMENT", std::string(what) + " must be a Float32Array");
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  require(a.ElementLength() == expect, "ERR_INVALID_ARGUMENT",
          std::string(what) + " has " + std::to_string(a.ElementLength()) + " values, expected " +
              std::to_string(expect));
  return a.Data();
}

int get_int(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  require(v.IsNumber(), "ERR_INVALID_ARGUMENT", std::string("expected a number for '") + key + "'");
  return v.As<Napi::Number>().Int32Value();
}

int get_int_or(const Napi::Object& o, const char* key, int fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : fallback;
}

double get_number_or(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

bool get_bool_or(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : fallback;
}

ConvParams conv_params(const Napi::Object& o) {
  ConvParams p;
  p.cin = get_int(o, "cin");
  p.cout = get_int(o, "cout");
  p.kernel = get_int(o, "kernel");
  p.stride = get_int_or(o, "stride", 1);
  p.pad = get_int_or(o, "pad", 0);
  p.dilation = get_int_or(o, "dilation", 1);
  p.transposed = get_bool_or(o, "transposed", false);
  return p;
}

std::vector<float> read_weight(const Napi::Value& v, const MappedFile* file, size_t expect_numel,
                               const std::string& name) {
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
    Napi::Float32Array a = v.As<Napi::Float32Array>();
    require(a.ElementLength() == expect_numel, "ERR_SHAPE_MISMATCH",
            name + ": expected " + std::to_string(expect_numel) + " values, got " +
                std::to_string(a.ElementLength()));
    return std::vector<float>(a.Data(), a.Data() + a.ElementLength());
  }
  require(v.IsObject() && file != nullptr, "ERR_INVALID_ARGUMENT",
          name + ": expected a Float32Array or a file reference");
  Napi::Object o = v.As<Napi::Object>();
  const double offset = get_number_or(o, "offset", -1);
  const double nbytes = get_number_or(o, "nbytes", -1);
  const std::string dtype = o.Get("dtype").ToString().Utf8Value();
  require(offset >= 0 && nbytes >= 0, "ERR_INVALID_ARGUMENT", name + ": bad file reference");
  const size_t esize = dtype == "F32" ? 4 : (dtype == "F16" || dtype == "BF16") ? 2 : 0;
  require(esize != 0, "ERR_DTYPE",
          file->path() + ": " + name + " has dtype " + dtype + "; expected F32, F16 or BF16");
  require(size_t(nbytes) == expect_numel * esize, "ERR_SHAPE_MISMATCH",
          file->path() + ": " + name + " holds " + std::to_string(size_t(nbytes) / esize) +
              " values, expected " + std::to_string(expect_numel));
  const uint8_t* p = file->range(uint64_t(offset), uint64_t(nbytes), name);
  std::vector<float> out(expect_numel);
  // Little-endian file data; memcpy per element avoids unaligned-access UB.
  for (size_t i = 0; i < expect_numel; ++i) {
    if (esize == 4) {
      std::memcpy(&out[i], p + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = dtype == "F16" ? half_to_float(h) : bf16_to_float(h);
    }
  }
  return out;
}

static std::unique_ptr<Conv1d> build_conv(const Napi::Object& o, const MappedFile* file) {
  const ConvParams p = conv_params(o);
  const std::string name = o.Get("name").IsString() ? o.Get("name").ToString().Utf8Value() : "conv";
  const std::vector<float> w =
      read_weight(o.Get("weight"), file, size_t(p.cin) * p.cout * p.kernel, name + ".weight");
  const std::vector<float> b = read_weight(o.Get("bias"), file, size_t(p.cout), name + ".bias");
  return std::make_unique<Conv1d>(p, w.data(), b.data());
}

VQStack build_conv_stack(const Napi::Object& o, const MappedFile* file) {
  VQStack s;
  s.in_channels = get_int(o, "inChannels");
  s.out_channels = get_int(o, "outChannels");
  Napi::Array layers = o.Get("layers").As<Napi::Array>();
  for (uint32_t i = 0; i < layers.Length(); ++i) {
    Napi::Object l = layers.Get(i).As<Napi::Object>();
    VQLayer layer;
    const std::string kind = l.Get("kind").ToString().Utf8Value();
    if (kind == "conv") {
      layer.kind = VQLayer::Kind::Conv;
      layer.a = build_conv(l.Get("conv").As<Napi::Object>(), file);
    } else if (kind == "res") {
      layer.kind = VQLayer::Kind::Res;
      layer.a = build_conv(l.Get("a").As<Napi::Object>(), file);
      layer.b = build_conv(l.Get("b").As<Napi::Object>(), file);
      layer.res_scale = float(get_number_or(l, "scale", 1.0));
      require(layer.b->params().cout == layer.a->params().cin, "ERR_HPARAMS",
              "residual block must map back to its input width");
    } else {
      fail("ERR_INVALID_ARGUMENT", "unknown layer kind '" + kind + "'");
    }
    s.layers.push_back(std::move(layer));
  }
  return s;
}

}  // namespace jb
