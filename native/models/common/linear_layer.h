// The linear layer of the DiT and the CLIP vision tower: `weight` [out, in] and `bias` [out],
// registered with their shapes and no storage of their own (views of one shared float32 zero,
// every stride 0: a CPU tensor, so load_weights can set_data the checkpoint's tensor into it)
// until load_weights replaces them. torch::nn::Linear allocates and initialises its weight in
// float32 when built, so building a model of them held the whole model in float32 before
// loading: 5.7 GB for the 1.3B DiT, 57 GB for a 14B one, whatever dtype the file keeps.
#pragma once
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

namespace wan::models {

class LinearLayerImpl : public torch::nn::Module {
 public:
  LinearLayerImpl(int64_t in_features, int64_t out_features, bool bias = true);
  at::Tensor weight;
  at::Tensor bias;  // undefined without one
};
TORCH_MODULE(LinearLayer);

// A parameter's shape with no storage of its own (a view of one zero of `dtype`, every stride
// 0), for any layer whose weights load_weights sets later (the T5's, the VAE's convolutions).
at::Tensor unloaded_tensor(at::IntArrayRef shape, at::ScalarType dtype = at::kFloat);

// Whether `tensor` is such a placeholder: more than one element, every stride 0.
bool is_unloaded(const at::Tensor& tensor);

// Gives every parameter and buffer of `module` that no checkpoint filled (is_unloaded) values in CPU memory: N(0, 1/fan_in) for matrices and kernels, 0 for vectors (biases),
// as float32. For benchmarks and tests that compute with a model built from a configuration.
void fill_unloaded(torch::nn::Module& module, uint64_t seed);

}  // namespace wan::models
