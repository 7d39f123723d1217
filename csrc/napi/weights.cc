#include "weights.h"

#include "../core/error.h"
#include "../core/half.h"

namespace jb {

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

}  // namespace jb
