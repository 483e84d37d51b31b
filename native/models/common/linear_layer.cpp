#include "models/common/linear_layer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <map>
#include <mutex>

namespace wan::models {

at::Tensor unloaded_tensor(at::IntArrayRef shape, at::ScalarType dtype) {
  // One shared zero per dtype: a model of thousands of layers holds a few bytes until loaded.
  static std::mutex mutex;
  static std::map<at::ScalarType, at::Tensor> zeros;
  std::lock_guard<std::mutex> lock(mutex);
  at::Tensor& zero = zeros[dtype];
  if (!zero.defined()) zero = at::zeros({1}, dtype);
  return zero.expand(shape);
}

LinearLayerImpl::LinearLayerImpl(int64_t in_features, int64_t out_features, bool with_bias) {
  weight = register_parameter("weight", unloaded_tensor({out_features, in_features}),
                              /*requires_grad=*/false);
  if (with_bias)
    bias = register_parameter("bias", unloaded_tensor({out_features}), /*requires_grad=*/false);
}

bool is_unloaded(const at::Tensor& tensor) {
  if (!tensor.defined() || tensor.numel() <= 1) return false;
  for (const auto stride : tensor.strides())
    if (stride != 0) return false;
  return true;
}

void fill_unloaded(torch::nn::Module& module, uint64_t seed) {
  at::NoGradGuard no_grad;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto fill = [&](at::Tensor& tensor) {
    if (!is_unloaded(tensor)) return;
    at::Tensor value;
    if (tensor.dim() < 2) {
      value = at::zeros(tensor.sizes(), at::kFloat);
    } else {
      const double fan_in = static_cast<double>(tensor.numel() / tensor.size(0));
      value = at::randn(tensor.sizes(), generator, at::kFloat) / std::sqrt(fan_in);
    }
    tensor.set_data(value);
  };
  for (auto& item : module.named_parameters(/*recurse=*/true)) fill(item.value());
  for (auto& item : module.named_buffers(/*recurse=*/true)) fill(item.value());
}

}  // namespace wan::models
