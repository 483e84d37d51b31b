#include "io/key_layout.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace wan::io {
namespace {

TEST(KeyLayout, StripsComfyPrefix) {
  TensorMap tensors{{"model.diffusion_model.head.weight", at::ones({1})}, {"other", at::ones({1})}};
  EXPECT_EQ(strip_prefix(tensors, "model.diffusion_model."), 1);
  EXPECT_TRUE(tensors.count("head.weight"));
  EXPECT_TRUE(tensors.count("other"));
}

TEST(KeyLayout, DequantizesScaledFp8PerTensorAndPerRow) {
  TensorMap tensors{{"a.weight", at::full({2, 3}, 2.0f)},
                    {"a.scale_weight", at::tensor(0.5f)},
                    {"b.weight", at::ones({2, 2})},
                    {"b.weight_scale", at::tensor({3.0f, 4.0f})},
                    {"scaled_fp8", at::zeros({0})}};
  EXPECT_EQ(dequantize_scaled_fp8(tensors), 2);
  EXPECT_TRUE(at::equal(tensors.at("a.weight"), at::ones({2, 3})));
  EXPECT_TRUE(at::equal(tensors.at("b.weight"), at::tensor({3.0f, 3.0f, 4.0f, 4.0f}).reshape({2, 2})));
  EXPECT_EQ(tensors.size(), 2u);
}

TEST(KeyLayout, ScaleWithoutWeightIsAnError) {
  TensorMap tensors{{"a.scale_weight", at::tensor(0.5f)}};
  EXPECT_THROW(dequantize_scaled_fp8(tensors), LoadError);
}

}  // namespace
}  // namespace wan::io
