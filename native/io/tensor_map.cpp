#include "io/tensor_map.h"

#include "core/error.h"

namespace wan::io {
namespace {

struct DTypeEntry {
  const char* name;
  int64_t size;
  at::ScalarType type;
};

// Every dtype of the safetensors format that ATen represents; fp8 is torch's native float8.
constexpr DTypeEntry kDTypes[] = {
    {"F64", 8, at::kDouble},   {"F32", 4, at::kFloat},    {"F16", 2, at::kHalf},
    {"BF16", 2, at::kBFloat16}, {"I64", 8, at::kLong},     {"I32", 4, at::kInt},
    {"I16", 2, at::kShort},    {"I8", 1, at::kChar},      {"U8", 1, at::kByte},
    {"BOOL", 1, at::kBool},    {"F8_E4M3", 1, at::kFloat8_e4m3fn}, {"F8_E5M2", 1, at::kFloat8_e5m2},
};

const DTypeEntry* find_dtype(const std::string& name) {
  for (const auto& entry : kDTypes)
    if (name == entry.name) return &entry;
  return nullptr;
}

}  // namespace

int64_t dtype_size(const std::string& dtype) {
  const auto* entry = find_dtype(dtype);
  if (!entry) throw LoadError("unknown dtype '" + dtype + "'");
  return entry->size;
}

at::ScalarType dtype_to_scalar_type(const std::string& dtype) {
  const auto* entry = find_dtype(dtype);
  if (!entry) throw LoadError("unknown dtype '" + dtype + "'");
  return entry->type;
}

std::string scalar_type_to_dtype(at::ScalarType type) {
  for (const auto& entry : kDTypes)
    if (entry.type == type && entry.size == static_cast<int64_t>(c10::elementSize(type)))
      return entry.name;
  throw LoadError(std::string("no safetensors dtype for ") + c10::toString(type));
}

std::string format_shape(at::IntArrayRef shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

int64_t TensorInfo::nbytes() const { return numel() * dtype_size(dtype); }

}  // namespace wan::io
