#include "samplers/guidance.h"

#include "core/error.h"
#include "test_util.h"

namespace wan::samplers {
namespace {

TEST(CfgCombine, MatchesOfficialNoisePredBitForBit) {
  // Every e2e golden stores noise_pred = uncond + guide_scale * (cond - uncond) per step.
  const std::pair<const char*, double> cases[] = {
      {"e2e_t2v_unipc", 5.0}, {"e2e_t2v_dpmpp", 4.5}, {"e2e_flf2v", 5.5}};
  for (const auto& [name, scale] : cases) {
    SCOPED_TRACE(name);
    for (int i = 0; i < 4; ++i) {
      const std::string step = "step." + std::to_string(i) + ".";
      const at::Tensor got =
          cfg_combine(testing::golden_tensor(name, step + "noise_pred_cond"),
                      testing::golden_tensor(name, step + "noise_pred_uncond"), scale);
      EXPECT_ALLCLOSE(got, testing::golden_tensor(name, step + "noise_pred"), 0.0);
    }
  }
}

TEST(CfgCombine, ScaleOneReturnsCondAndZeroReturnsUncond) {
  const at::Tensor cond = at::randn({2, 3});
  const at::Tensor uncond = at::randn({2, 3});
  EXPECT_ALLCLOSE(cfg_combine(cond, uncond, 0.0), uncond, 0.0);
  EXPECT_ALLCLOSE(cfg_combine(cond, uncond, 1.0), cond, 1e-6);
}

TEST(CfgCombine, RejectsMismatchedInputs) {
  EXPECT_THROW(cfg_combine(at::zeros({2, 3}), at::zeros({3, 2}), 5.0), ValidationError);
  EXPECT_THROW(cfg_combine(at::zeros({2}), at::zeros({2}, at::kDouble), 5.0), ValidationError);
}

}  // namespace
}  // namespace wan::samplers
