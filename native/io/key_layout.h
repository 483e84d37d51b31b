// Key-layout helpers shared by the model loaders: prefixes and fp8 "scaled" weights.
#pragma once
#include <string>

#include "io/tensor_map.h"

namespace wan::io {

// Removes `prefix` from every key that has it (e.g. ComfyUI's "model.diffusion_model.").
// Returns how many keys were renamed.
int64_t strip_prefix(TensorMap& tensors, const std::string& prefix);

// fp8 "scaled" checkpoints store per-layer `<name>.scale_weight` or `<name>.weight_scale` next to
// `<name>.weight`: replaces each weight by weight x scale (in float32, then `as`) and removes the
// scale tensors and the "scaled_fp8" marker. Returns the number of weights dequantized.
int64_t dequantize_scaled_fp8(TensorMap& tensors, at::ScalarType as = at::kFloat);

}  // namespace wan::io
