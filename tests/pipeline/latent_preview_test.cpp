// Latent previews: the 16 -> RGB projection on hand-computed values, and the sampler's per-step
// data prediction x0 = x_t - sigma_t * v against the step's own recorded tensors.
#include <gtest/gtest.h>

#include "core/error.h"
#include "models/dit/wan_dit.h"
#include "pipeline/latent_preview.h"
#include "pipeline/sampling.h"
#include "samplers/flow_sampler.h"
#include "test_util.h"

namespace wan::pipeline {
namespace {

TEST(LatentPreview, ProjectsTheFirstFrameAsComfyUIsLatent2Rgb) {
  at::Tensor x0 = at::zeros({16, 2, 3, 4});
  x0.select(1, 1).fill_(7.0);  // the second frame must not show
  x0[0][0][1][2] = 1.0;        // channel 0 at (row 1, column 2)
  const at::Tensor rgb8 = latent_preview_rgb8(x0);
  ASSERT_EQ(rgb8.sizes(), (std::vector<int64_t>{3, 4, 3}));
  ASSERT_EQ(rgb8.scalar_type(), at::kByte);
  // Zero latent: the bias alone, ((b + 1) / 2 * 255) truncated: -0.1835, -0.0868, -0.3360.
  EXPECT_EQ(rgb8[0][0][0].item<int>(), 104);
  EXPECT_EQ(rgb8[0][0][1].item<int>(), 116);
  EXPECT_EQ(rgb8[0][0][2].item<int>(), 84);
  // Channel 0's row (-0.1299, -0.1692, 0.2932) plus the bias.
  EXPECT_EQ(rgb8[1][2][0].item<int>(), 87);
  EXPECT_EQ(rgb8[1][2][1].item<int>(), 94);
  EXPECT_EQ(rgb8[1][2][2].item<int>(), 122);
  EXPECT_THROW(latent_preview_rgb8(at::zeros({4, 1, 2, 2})), ValidationError);
  EXPECT_THROW(latent_preview_rgb8(at::zeros({16, 2, 2})), ValidationError);
}

TEST(LatentPreview, SamplerHandsEachStepsDataPrediction) {
  auto dit = models::load_wan_dit(testing::tiny_path("weights/dit_t2v_tiny.safetensors"),
                                  at::kFloat, at::kFloat);
  at::manual_seed(0);
  const at::Tensor positive = at::randn({5, dit->config().text_dim});
  const at::Tensor negative = at::randn({3, dit->config().text_dim});
  SampleSettings settings;
  settings.steps = 3;
  const VideoShape shape{64, 64, 5};
  std::vector<StepRecord> steps;
  std::vector<at::Tensor> previews;
  SampleCallbacks callbacks;
  callbacks.trace = [&](const StepRecord& r) { steps.push_back(r); };
  callbacks.preview = [&](const at::Tensor& x0) { previews.push_back(x0.clone()); };
  const at::Tensor with = sample_video(dit, positive, negative, nullptr, shape, settings,
                                       callbacks, at::kCPU);
  ASSERT_EQ(previews.size(), 3u);
  const auto sampler = samplers::make_flow_sampler(settings.solver, settings.steps, settings.shift);
  for (size_t i = 0; i < previews.size(); ++i) {
    const double sigma = sampler->sigmas()[static_cast<int64_t>(i)].item<double>();
    EXPECT_TRUE(previews[i].equal(steps[i].latent_in - steps[i].noise_pred * sigma)) << "step " << i;
  }
  // Asking for previews changes nothing in the result.
  const at::Tensor without = sample_video(dit, positive, negative, nullptr, shape, settings,
                                          SampleCallbacks{}, at::kCPU);
  EXPECT_TRUE(with.equal(without));
}

}  // namespace
}  // namespace wan::pipeline
