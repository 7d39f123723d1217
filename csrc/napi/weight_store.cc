#include "weight_store.h"

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
  const size_t esize = dtype == "F32" ? 4 : (dtype == "F16" || dtype == "BF16") ? 2 : 0;
  require(esize != 0, "ERR_DTYPE", file_->path() + ": " + name + " has dtype " + dtype + "; expected F32, F16 or BF16");
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

const float* WeightStore::vector(const Napi::Value& ref, int len, const std::string& name) {
  owned_.push_back(read_weight(ref, file_.get(), size_t(len), name));
  return owned_.back().data();
}

}  // namespace jb
