// A pickle reader that only understands what torch.save writes for a state dict. It executes no
// code: every GLOBAL must be on a short allow-list, anything else is refused with its name and the
// byte offset where it appears.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace wan::io {

struct PickleValue;
using PickleValuePtr = std::shared_ptr<PickleValue>;

struct PickleValue {
  enum class Kind { kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorage, kTensor };
  Kind kind = Kind::kNone;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0;
  std::string text;  // kString / kGlobal ("module name") / kStorage: storage dtype (F32, BF16, ...)
  std::vector<PickleValuePtr> items;                                // kTuple, kList
  std::vector<std::pair<PickleValuePtr, PickleValuePtr>> entries;   // kDict, in insertion order
  at::Tensor tensor;            // kStorage: flat data (undefined in header-only mode); kTensor
  std::vector<int64_t> shape;   // kTensor: shape (also set in header-only mode)
  int64_t numel = 0;            // kStorage: elements
  // Set by the reader: how deeply containers nest below this value, and whether it has been put
  // inside a container (after which it may not change: that rules out cycles).
  int32_t depth = 0;
  bool contained = false;
};

class RestrictedUnpickler {
 public:
  // Maps a persistent id (torch's ('storage', type, key, location, numel) tuple) to a kStorage.
  using PersistentLoad = std::function<PickleValuePtr(const PickleValue& pid, size_t offset)>;

  RestrictedUnpickler(const uint8_t* data, size_t size, std::string origin,
                      PersistentLoad persistent_load);
  // Runs the program to STOP; throws LoadError naming the origin, opcode or global, and offset.
  PickleValuePtr load();

  // Storage dtype of a torch storage class ("torch FloatStorage" -> "F32"), or "" if not one.
  static std::string storage_dtype(const std::string& global);

 private:
  const uint8_t* data_;
  size_t size_;
  std::string origin_;
  PersistentLoad persistent_load_;
};

}  // namespace wan::io
