#include "models/common/weight_cast.h"

namespace wan::models {

at::Tensor weight_scale_of(const torch::nn::Module& layer) {
  const auto buffers = layer.named_buffers(/*recurse=*/false);
  const auto* scale = buffers.find(kWeightScaleBuffer);
  return scale ? *scale : at::Tensor();
}

at::Tensor cast_weight(const at::Tensor& weight, at::ScalarType dtype, const at::Tensor& scale) {
  if (!scale.defined()) return weight.scalar_type() == dtype ? weight : weight.to(dtype);
  // copy=true: the product is written into the fresh cast, never into the parameter itself.
  auto cast = weight.to(dtype, /*non_blocking=*/false, /*copy=*/true);
  return cast.mul_(scale.to(dtype));
}

at::Tensor cast_weight(const torch::nn::Module& layer, const at::Tensor& weight,
                       at::ScalarType dtype) {
  // Only an fp8 weight carries a scale (load_weights dequantizes any other at load), so a weight
  // already in the compute dtype needs no look-up.
  if (weight.scalar_type() == dtype) return weight;
  return cast_weight(weight, dtype, weight_scale_of(layer));
}

at::Tensor linear_in(const LinearLayer& layer, const at::Tensor& x, at::ScalarType dtype) {
  const auto& b = layer->bias;
  return at::linear(x.to(dtype), cast_weight(*layer, layer->weight, dtype),
                    b.defined() && b.scalar_type() != dtype ? b.to(dtype) : b);
}

}  // namespace wan::models
