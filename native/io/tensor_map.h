// Shared vocabulary of the weight readers: a named set of tensors and header-only records.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace wan::io {

// Tensors by checkpoint key, sorted by name.
using TensorMap = std::map<std::string, at::Tensor>;

// What a header says about one tensor, without touching its data.
struct TensorInfo {
  std::string name;
  std::string dtype;  // storage dtype in safetensors spelling: F32, BF16, F8_E4M3, ...
  std::vector<int64_t> shape;
  std::string file;  // the file that holds it (differs per shard)

  int64_t numel() const;
  int64_t nbytes() const;
};

// "[3, 4]": a shape as error messages print it.
std::string format_shape(at::IntArrayRef shape);

// Size in bytes of one element of a storage dtype ("F32" -> 4); throws LoadError when unknown.
int64_t dtype_size(const std::string& dtype);
// The ATen type a storage dtype is read as. fp8 has no ATen type in LibTorch 1.13: it reads as
// kFloat (dequantized on read).
at::ScalarType dtype_to_scalar_type(const std::string& dtype);
// Safetensors spelling of an ATen type ("F32" for kFloat).
std::string scalar_type_to_dtype(at::ScalarType type);

// Options shared by the readers.
struct LoadOptions {
  // Dtype that fp8 tensors are dequantized to (LibTorch 1.13 has no float8).
  at::ScalarType fp8_as = at::kFloat;
};

}  // namespace wan::io
