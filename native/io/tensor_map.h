// Shared vocabulary of the weight readers: a named set of tensors and header-only records.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <optional>
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
// The ATen type a storage dtype is read as ("F8_E4M3" -> kFloat8_e4m3fn).
at::ScalarType dtype_to_scalar_type(const std::string& dtype);
// Safetensors spelling of an ATen type ("F32" for kFloat).
std::string scalar_type_to_dtype(at::ScalarType type);

// Options shared by the readers.
struct LoadOptions {
  // Unset: fp8 tensors keep their float8 dtype (zero-copy, like every other dtype) and become
  // floats where a model needs them (load_weights, dequantize_scaled_fp8). Set: they are
  // converted to this dtype on read (a copy).
  std::optional<at::ScalarType> fp8_as;
};

}  // namespace wan::io
