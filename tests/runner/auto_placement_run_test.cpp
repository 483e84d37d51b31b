// The shipped `auto` workflows run through wan-run: the planner picks each model's placement for
// the budget, says why, and the frames are bit-identical to the fixed placements'.
#include <gtest/gtest.h>

#include "runner_test_util.h"

namespace wan::runner::testing {
namespace {

at::Tensor run_frames(const std::string& task, const std::string& config, const std::string& vram,
                      std::string* log) {
  TempDir dir("auto_" + task + "_" + config + "_" + vram);
  write_api_prompt_with_frames(task, config, dir / "prompt.json");
  const auto result = run_wan(
      with_sets({(dir / "prompt.json").string(), "--models", models_dir().string(), "--output",
                 (dir / "output").string(), "--vram", vram, "--reserve", "0"},
                tiny_overrides(task, /*fp32=*/false)));
  EXPECT_EQ(result.exit_code, 0) << result.err;
  if (log) *log = result.err;
  return saved_frames(dir / "output");
}

TEST(AutoPlacementRun, FramesEqualTheFixedPlacementsAndTheLogSaysWhy) {
  for (const std::string task : {"t2v", "i2v"}) {
    SCOPED_TRACE(task);
    const at::Tensor reference = run_frames(task, "baseline", "1GiB", nullptr);
    // Roomy, and so small that the tiny models cannot all sit on the card.
    for (const std::string vram : {"1GiB", "6MiB"}) {
      SCOPED_TRACE(vram);
      std::string log;
      const at::Tensor frames = run_frames(task, "auto", vram, &log);
      ASSERT_TRUE(frames.defined() && reference.defined());
      EXPECT_TRUE(at::equal(frames, reference));
      EXPECT_NE(log.find("auto placement: LoadDiT (node "), std::string::npos) << log;
      EXPECT_NE(log.find("auto placement: planned device peak"), std::string::npos) << log;
    }
  }
}

TEST(AutoPlacementRun, PlanPrintsTheChoices) {
  const auto result = run_wan({workflow_path("t2v", "auto").string(), "--models",
                               models_dir().string(), "--plan", "--preset", "t2v-1.3B", "--vram",
                               "11.49GiB"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("auto placement: LoadT5 (node "), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("fits: peak"), std::string::npos) << result.out;
}

TEST(AutoPlacementRun, APlanThatDoesNotFitNamesTheSmallestCardAndWhatAutoWouldDo) {
  // generate.py's baseline with its bf16 T5 on an 11.49 GiB card.
  const auto result = run_wan({workflow_path("t2v", "baseline").string(), "--models",
                               models_dir().string(), "--plan", "--preset", "t2v-1.3B", "--vram",
                               "11.49GiB", "--set", "LoadT5.model_name=models_t5_umt5-xxl-enc-bf16.pth"});
  EXPECT_EQ(result.exit_code, 3) << result.err;
  EXPECT_NE(result.out.find("smallest card this graph fits on as placed: --vram "), std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("with placement auto on every loader it fits:"), std::string::npos)
      << result.out;
}

}  // namespace
}  // namespace wan::runner::testing
