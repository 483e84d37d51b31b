// Weights kept in their stored dtype meet the compute dtype here: every linear layer and
// convolution of every model takes its weight through cast_weight (the way ComfyUI's cast ops
// do), so a bf16 or fp8 checkpoint stays bf16 or fp8 in memory and only the layer that is
// computing holds a copy in the compute dtype, for the length of one call.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include "models/common/linear_layer.h"

namespace wan::models {

// Buffer name of the per-layer scale of ComfyUI's "scaled" fp8 checkpoints: the effective weight
// is weight x scale_weight. load_weights registers it on a layer whose fp8 weight it keeps.
inline constexpr const char* kWeightScaleBuffer = "scale_weight";

// The layer's scale_weight buffer (float32: a scalar, or one value per output channel shaped to
// broadcast over the weight), or an undefined tensor when the layer has none.
at::Tensor weight_scale_of(const torch::nn::Module& layer);

// `weight` as `dtype` for one call: itself when it already has that dtype and no scale, else a
// new tensor (the cast, then times `scale` in `dtype`). float32 compute of a scaled fp8 weight
// gives exactly float32(weight) * scale, the value a load-time dequantization would keep.
at::Tensor cast_weight(const at::Tensor& weight, at::ScalarType dtype, const at::Tensor& scale = {});

// A layer's parameter `weight` as `dtype`, with the layer's scale applied.
at::Tensor cast_weight(const torch::nn::Module& layer, const at::Tensor& weight,
                       at::ScalarType dtype);

// x @ W^T + b computed in `dtype`: x, W (with its scale) and b are cast where stored otherwise.
at::Tensor linear_in(const LinearLayer& layer, const at::Tensor& x, at::ScalarType dtype);

}  // namespace wan::models
