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
  // float through a misaligned pointer is undefined behaviour).
  WeightView matrix(const Napi::Value& ref, int rows, int cols, const std::string& name);
  // A float32 vector (biases, LayerNorm): always an owned fp32 copy.
  const float* vector(const Napi::Value& ref, int len, const std::string& name);

 private:
  std::shared_ptr<MappedFile> file_;
  std::vector<std::vector<float>> owned_;
};

}  // namespace jb
