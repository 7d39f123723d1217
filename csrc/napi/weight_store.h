// Weights handed over from JS for models that keep them in their file's dtype: views into
// the memory-mapped file (fp16 stays fp16, nothing is copied), or owned copies of
// Float32Arrays (tests, random-weight benchmarks). The store keeps both alive.
#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "../core/mapped_file.h"
#include "../cpu/matmul.h"

namespace jb {

class WeightStore {
 public:
  explicit WeightStore(std::shared_ptr<MappedFile> file) : file_(std::move(file)) {}

  // A tensor of `rows` x `cols` stored values. Misaligned file data is copied (reading a
  // float through a misaligned pointer is undefined behaviour). An int8 tensor (dtype
  // "I8") comes with `scales: {offset, nbytes, dtype: "F32", shape}` in its reference
  // (lib/model-file.ts nativeWeight), shape [1, cols] or [rows, 1]; the view records the
  // axis (scale_rows), and a caller that uses the matrix transposed (x_out) must find
  // scale_rows set (matmul() refuses the view otherwise).
  WeightView matrix(const Napi::Value& ref, int rows, int cols, const std::string& name);
  // A float32 vector (biases, LayerNorm): always an owned fp32 copy.
  const float* vector(const Napi::Value& ref, int len, const std::string& name);

 private:
  void attach_scales(WeightView& v, const Napi::Value& ref, int rows, int cols, const std::string& name);
  std::shared_ptr<MappedFile> file_;
  std::vector<std::vector<float>> owned_;
};

}  // namespace jb
