// Copies checkpoint tensors into a module whose children are registered under checkpoint keys.
#pragma once
#include <torch/nn/module.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "io/tensor_map.h"

namespace wan::models {

struct LoadWeightsOptions {
  // Checkpoint keys starting with one of these are expected to be unused (e.g. "textual." of the
  // CLIP checkpoint, of which Wan uses only the vision tower).
  std::vector<std::string> ignore_prefixes;
  // Module tensors that may be absent from the checkpoint (computed buffers).
  std::vector<std::string> optional_keys;
  // Dtype the module's floating-point tensors end up in (kFloat for parity).
  at::ScalarType dtype = at::kFloat;
  // A floating-point tensor stored in a narrower dtype than `dtype` (fp8 in a bf16 model) stays
  // as stored, and the layers cast it at each call (models/common/weight_cast.h): widening at
  // load would give the same values for more memory.
  bool keep_narrower = false;
  // When set, decides instead of the two fields above: the dtype the floating-point tensor
  // `key`, stored as `stored`, is kept in.
  std::function<at::ScalarType(const std::string& key, at::ScalarType stored)> dtype_of;
};

// The dtype load_weights keeps the floating-point tensor `key` in when the file stores it as
// `stored`.
at::ScalarType kept_dtype(const LoadWeightsOptions& options, const std::string& key,
                          at::ScalarType stored);

// Fills every parameter and buffer of `module` from `tensors` by name. One LoadError lists every
// missing, unexpected and mis-shaped key (file, key, expected and found shape).
//
// ComfyUI's "scaled" fp8 weights (`<layer>.weight` in fp8 with a float32 `<layer>.scale_weight`
// or `<layer>.weight_scale`, per tensor or per output channel; the file's `scaled_fp8` marker is
// ignored): an fp8 weight kept in fp8 keeps its scale as the layer's buffer `scale_weight`,
// applied at each call by cast_weight; a weight converted at load is dequantized then
// (float32(weight) * scale, then the kept dtype).
void load_weights(torch::nn::Module& module, const io::TensorMap& tensors, const std::string& origin,
                  const LoadWeightsOptions& options = {});

// What load_weights keeps, from headers alone (the memory planner): `expected` lists the
// module's tensors in registration order (the dtype field is ignored), `stored` the checkpoint's
// tensors by module key, scales under their file names. Returns each expected tensor in the
// dtype it is kept in (`options.dtype` when absent from `stored`, which the loader would
// refuse), then the scale buffers load_weights registers, in that order: the order the device
// manager moves them when the module has no other buffers.
std::vector<io::TensorInfo> kept_tensors(const std::vector<io::TensorInfo>& expected,
                                         const std::map<std::string, io::TensorInfo>& stored,
                                         const LoadWeightsOptions& options);

}  // namespace wan::models
