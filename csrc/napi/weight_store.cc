#include "weight_store.h"

#include <cmath>
#include <cstring>

#include "../core/error.h"
#include "weights.h"

namespace jb {

WeightView WeightStore::matrix(const Napi::Value& ref, int rows, int cols, const std::string& name) {
  WeightView v;
  v.k = rows;
  v.n = cols;
  const size_t numel = size_t(rows) * cols;
  if (ref.IsTypedArray() || !file_) {
    owned_.push_back(read_weight(ref, file_.get(), numel, name));
    v.data = owned_.back().data();
    return v;
  }
  Napi::Object o = ref.As<Napi::Object>();
  const std::string dtype = o.Get("dtype").ToString().Utf8Value();
  const double offset = get_number_or(o, "offset", -1), nbytes = get_number_or(o, "nbytes", -1);
  if (dtype == "I8") {
    require(offset >= 0 && size_t(nbytes) == numel, "ERR_SHAPE_MISMATCH",
            file_->path() + ": " + name + " does not hold " + std::to_string(numel) + " int8 values");
    v.data = file_->range(uint64_t(offset), uint64_t(nbytes), name);  // 1-byte elements: any address
    v.dtype = DType::I8;
    attach_scales(v, o.Get("scales"), rows, cols, name);
    return v;
  }
  const size_t esize = dtype == "F32" ? 4 : (dtype == "F16" || dtype == "BF16") ? 2 : 0;
  require(esize != 0, "ERR_DTYPE", file_->path() + ": " + name + " has dtype " + dtype + "; expected F32, F16, BF16 or I8");
  require(offset >= 0 && size_t(nbytes) == numel * esize, "ERR_SHAPE_MISMATCH",
          file_->path() + ": " + name + " does not hold " + std::to_string(numel) + " values");
  const uint8_t* p = file_->range(uint64_t(offset), uint64_t(nbytes), name);
  if (reinterpret_cast<uintptr_t>(p) % esize != 0) {
    owned_.push_back(read_weight(ref, file_.get(), numel, name));
    v.data = owned_.back().data();
    return v;
  }
  v.data = p;
  v.dtype = dtype == "F32" ? DType::F32 : dtype == "F16" ? DType::F16 : DType::BF16;
  return v;
}

// The scales of an int8 matrix: the F32 tensor "<name>.__scale" of shape [1, cols] (one
// per stored column) or [rows, 1] (one per stored row), every one finite and >= 0
// (lib/checkpoint/dtype-convert.ts writes them; checkTensors refuses files without them
// before this runs, and this refuses them again so no kernel can read past them).
void WeightStore::attach_scales(WeightView& v, const Napi::Value& ref, int rows, int cols, const std::string& name) {
  const std::string sname = name + ".__scale";
  require(ref.IsObject() && !ref.IsTypedArray(), "ERR_MISSING_KEY",
          file_->path() + ": " + name + " is int8 but its scales (\"" + sname + "\") are missing");
  Napi::Object o = ref.As<Napi::Object>();
  const std::string dtype = o.Get("dtype").IsString() ? o.Get("dtype").ToString().Utf8Value() : "";
  require(dtype == "F32", "ERR_DTYPE", file_->path() + ": " + sname + " has dtype " + dtype + "; int8 scales are F32");
  Napi::Value shape_v = o.Get("shape");
  require(shape_v.IsArray() && shape_v.As<Napi::Array>().Length() == 2, "ERR_SHAPE_MISMATCH",
          file_->path() + ": " + sname + " must have shape [1, " + std::to_string(cols) + "] or [" + std::to_string(rows) + ", 1]");
  Napi::Array shape = shape_v.As<Napi::Array>();
  const double s0 = shape.Get(0u).ToNumber().DoubleValue(), s1 = shape.Get(1u).ToNumber().DoubleValue();
  const bool per_col = s0 == 1 && s1 == cols, per_row = s0 == rows && s1 == 1;
  require(per_col || per_row, "ERR_SHAPE_MISMATCH",
          file_->path() + ": " + sname + " has shape [" + std::to_string(int64_t(s0)) + ", " + std::to_string(int64_t(s1)) +
              "]; for " + name + " [" + std::to_string(rows) + ", " + std::to_string(cols) + "] it must be [1, " +
              std::to_string(cols) + "] (per column) or [" + std::to_string(rows) + ", 1] (per row)");
  const size_t len = per_col ? size_t(cols) : size_t(rows);
  const double offset = get_number_or(o, "offset", -1), nbytes = get_number_or(o, "nbytes", -1);
  require(offset >= 0 && size_t(nbytes) == 4 * len, "ERR_SHAPE_MISMATCH",
          file_->path() + ": " + sname + " does not hold " + std::to_string(len) + " scales");
  const uint8_t* p = file_->range(uint64_t(offset), uint64_t(nbytes), sname);
  // Always an owned copy: a few KB per matrix, aligned whatever the file's offset, and
  // checked once here rather than trusted on every product.
  owned_.emplace_back(len);
  std::vector<float>& sc = owned_.back();
  std::memcpy(sc.data(), p, 4 * len);
  for (size_t i = 0; i < len; ++i) {
    require(std::isfinite(sc[i]) && sc[i] >= 0.0f, "ERR_CHECKPOINT_FORMAT",
            file_->path() + ": " + sname + " holds " + std::to_string(sc[i]) + " at channel " + std::to_string(i) +
                "; int8 scales must be finite and >= 0");
  }
  v.scales = sc.data();
  // A 1 x 1 matrix fits both shapes; per row and per column are then the same scale.
  v.scale_rows = per_row && !per_col;
}

const float* WeightStore::vector(const Napi::Value& ref, int len, const std::string& name) {
  owned_.push_back(read_weight(ref, file_.get(), size_t(len), name));
  return owned_.back().data();
}

}  // namespace jb
