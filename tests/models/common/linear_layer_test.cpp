// Models are built without weight storage: a LinearLayer's weight and bias are placeholders
// (every stride 0 over one shared element) until load_weights replaces them, so building the
// 1.3B DiT from its configuration holds kilobytes, not its 5.7 GB in float32 (what
// torch::nn::Linear allocated and initialised before the file's weights replaced it).
#include <gtest/gtest.h>

#include <unordered_set>

#include "models/common/linear_layer.h"
#include "models/dit/wan_dit.h"

namespace wan::models {
namespace {

// Bytes of the distinct storages behind a module's parameters and buffers.
int64_t storage_bytes(torch::nn::Module& module) {
  std::unordered_set<const void*> seen;
  int64_t total = 0;
  auto add = [&](const at::Tensor& t) {
    if (t.defined() && seen.insert(t.storage().unsafeGetStorageImpl()).second)
      total += static_cast<int64_t>(t.storage().nbytes());
  };
  for (const auto& p : module.parameters()) add(p);
  for (const auto& b : module.buffers()) add(b);
  return total;
}

TEST(LinearLayer, HasItsShapesAndNoStorageUntilLoaded) {
  LinearLayer layer(64, 32);
  EXPECT_EQ(layer->weight.sizes(), (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(layer->bias.sizes(), (std::vector<int64_t>{32}));
  EXPECT_TRUE(is_unloaded(layer->weight));
  EXPECT_TRUE(is_unloaded(layer->bias));
  EXPECT_LE(storage_bytes(*layer), 4);
  EXPECT_FALSE(LinearLayer(8, 8, /*bias=*/false)->bias.defined());

  fill_unloaded(*layer, 3);
  EXPECT_FALSE(is_unloaded(layer->weight));
  EXPECT_TRUE(layer->weight.is_contiguous());
  EXPECT_TRUE(at::equal(layer->bias, at::zeros({32})));
  const double std = layer->weight.std().item<double>();
  EXPECT_NEAR(std, 1.0 / 8.0, 0.01);  // N(0, 1/fan_in), fan_in 64
  EXPECT_FALSE(is_unloaded(at::zeros({4})));
  EXPECT_FALSE(is_unloaded(at::zeros({1}).expand({1})));  // one element is a value, not a shape
}

TEST(LinearLayer, ADitBuiltFromItsConfigurationHoldsNoWeights) {
  const auto config = WanDitConfig::t2v_1_3b();
  WanDit model{WanDitOptions(config)};
  int64_t elements = 0;
  for (const auto& p : model->parameters()) elements += p.numel();
  EXPECT_EQ(elements, wan_dit_parameter_count(config));
  // What is left: the blocks' modulation vectors, norms and the patch embedding's small kernel.
  const int64_t held = storage_bytes(*model);
  std::printf("1.3B DiT built from its configuration: %lld parameters, %lld bytes of storage\n",
              static_cast<long long>(elements), static_cast<long long>(held));
  EXPECT_LT(held, int64_t{16} << 20);
}

}  // namespace
}  // namespace wan::models
