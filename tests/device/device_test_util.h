// Small synthetic models for the device tests: Linear layers plus a registered buffer, so moves
// must carry buffers as well as parameters.
#pragma once
#include <torch/nn.h>

namespace wan::device::testing {

class TinyNetImpl : public torch::nn::Module {
 public:
  TinyNetImpl() {
    fc1_ = register_module("fc1", torch::nn::Linear(16, 32));
    fc2_ = register_module("fc2", torch::nn::Linear(32, 8));
    scale_ = register_buffer("scale", torch::linspace(0.5, 2.0, 8));
  }
  // x: [B, 16] -> [B, 8]
  torch::Tensor forward(const torch::Tensor& x) { return fc2_(torch::relu(fc1_(x))) * scale_; }
  // (16*32 + 32) + (32*8 + 8) parameters and 8 buffer elements, float32.
  static constexpr int64_t kBytes = ((16 * 32 + 32) + (32 * 8 + 8) + 8) * 4;

 private:
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
  torch::Tensor scale_;
};
TORCH_MODULE(TinyNet);

// A TinyNet with weights fixed by `seed`, so several copies compute the same function.
inline std::shared_ptr<TinyNetImpl> make_tiny_net(uint64_t seed = 1) {
  torch::manual_seed(seed);
  return TinyNet().ptr();
}

}  // namespace wan::device::testing
