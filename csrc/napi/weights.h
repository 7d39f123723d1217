// Reading weight tensors handed over from JS: either a Float32Array, or a reference
// {offset, nbytes, dtype} into a memory-mapped safetensors file. Both come out as float32
// (fp16/bf16 are widened; the CPU computes in fp32).
#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "../core/mapped_file.h"
#include "../cpu/conv1d.h"

namespace jb {

std::vector<float> read_weight(const Napi::Value& v, const MappedFile* file, size_t expect_numel,
                               const std::string& name);

// A Float32Array argument of exactly `expect` values (ERR_INVALID_ARGUMENT otherwise).
const float* float32_arg(const Napi::Value& v, size_t expect, const char* what);

int get_int(const Napi::Object& o, const char* key);
int get_int_or(const Napi::Object& o, const char* key, int fallback);
double get_number_or(const Napi::Object& o, const char* key, double fallback);
bool get_bool_or(const Napi::Object& o, const char* key, bool fallback);

struct VQStack;
// A conv stack (lib/native.ts NativeStack): convs and residual blocks, weights widened to fp32.
VQStack build_conv_stack(const Napi::Object& o, const MappedFile* file);

// {cin, cout, kernel, stride?, pad?, dilation?, transposed?} as lib/native.ts NativeConvParams.
ConvParams conv_params(const Napi::Object& o);

}  // namespace jb
