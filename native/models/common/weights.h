// Copies checkpoint tensors into a module whose children are registered under checkpoint keys.
#pragma once
#include <torch/nn/module.h>

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
};

// Fills every parameter and buffer of `module` from `tensors` by name. One LoadError lists every
// missing, unexpected and mis-shaped key (file, key, expected and found shape).
void load_weights(torch::nn::Module& module, const io::TensorMap& tensors, const std::string& origin,
                  const LoadWeightsOptions& options = {});

}  // namespace wan::models
