// The shipped workflows, run through wan-run with their inputs set to an end-to-end golden's
// prompt, seed, size, steps, shift, cfg and solver, reproduce the official video within 1e-4.
#include <gtest/gtest.h>

#include "io/tensor_index.h"
#include "runner_test_util.h"
#include "test_util.h"

namespace wan::runner::testing {
namespace {

constexpr double kAtol = 1e-5;  // fp32 end to end, as the goldens were made; measured 4.8e-6

struct Golden {
  nlohmann::json derived, kwargs;
  at::Tensor video;  // [3, F, H, W] in [-1, 1]
  explicit Golden(const std::string& name) {
    const auto metadata =
        io::read_metadata(wan::testing::tiny_path("goldens/" + name + ".safetensors"));
    derived = nlohmann::json::parse(metadata.at("derived"));
    kwargs = nlohmann::json::parse(metadata.at("generate_kwargs"));
    video = wan::testing::golden_tensor(name, "video");
  }
};

std::string number(double value) {
  std::ostringstream text;
  text.precision(17);
  text << value;
  return text.str();
}

// Runs `task`'s baseline workflow (plus a SaveTensor of the decoded frames) with the golden's
// settings and compares the frames with its video.
void expect_reproduces(const std::string& task, const std::string& golden_name,
                       std::vector<std::string> extra_sets = {}) {
  const Golden g(golden_name);
  TempDir dir("golden_" + golden_name);
  write_api_prompt_with_frames(task, "baseline", dir / "prompt.json");

  auto sets = tiny_overrides(task, /*fp32=*/true);
  const int64_t frames = g.video.size(1), height = g.video.size(2), width = g.video.size(3);
  std::vector<std::string> sized = {"Sample"};
  if (task == "i2v") sized.push_back("ImageToVideo");
  if (task == "flf2v") sized.push_back("FirstLastFrameToVideo");
  if (task == "vace") sized.push_back("VaceToVideo");
  for (const auto& node : sized) {
    sets.push_back(node + ".width=" + std::to_string(width));
    sets.push_back(node + ".height=" + std::to_string(height));
    sets.push_back(node + ".frames=" + std::to_string(frames));
  }
  sets.push_back("positive.text=" + g.derived["prompt"].get<std::string>());
  sets.push_back("negative.text=" + g.derived["n_prompt_resolved"].get<std::string>());
  sets.push_back("Sample.seed=" + std::to_string(g.kwargs["seed"].get<int64_t>()));
  sets.push_back("Sample.steps=" + std::to_string(g.kwargs["sampling_steps"].get<int64_t>()));
  sets.push_back("Sample.shift=" + number(g.kwargs["shift"].get<double>()));
  sets.push_back("Sample.cfg=" + number(g.kwargs["guide_scale"].get<double>()));
  sets.push_back("Sample.solver=" + g.kwargs["sample_solver"].get<std::string>());
  sets.insert(sets.end(), extra_sets.begin(), extra_sets.end());

  const auto result =
      run_wan(with_sets({(dir / "prompt.json").string(), "--models", models_dir().string(),
                         "--output", (dir / "output").string()},
                        sets));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto frames_out = saved_frames(dir / "output");  // [F, H, W, 3] in [0, 1]
  ASSERT_TRUE(frames_out.defined());
  const auto video = frames_out.permute({3, 0, 1, 2}) * 2 - 1;  // [3, F, H, W] in [-1, 1]
  EXPECT_ALLCLOSE(video, g.video, kAtol);
}

TEST(GoldenWorkflows, TextToVideoUniPCMatchesOfficialWithin1e5) {
  expect_reproduces("t2v", "e2e_t2v_unipc");
}

TEST(GoldenWorkflows, TextToVideoDpmppMatchesOfficialWithin1e5) {
  expect_reproduces("t2v", "e2e_t2v_dpmpp");
}

TEST(GoldenWorkflows, ImageToVideoMatchesOfficialWithin1e5) { expect_reproduces("i2v", "e2e_i2v"); }

TEST(GoldenWorkflows, FirstLastFrameToVideoMatchesOfficialWithin1e5) {
  expect_reproduces("flf2v", "e2e_flf2v");
}

TEST(GoldenWorkflows, VaceMatchesOfficialWithin1e5) {
  const Golden g("e2e_vace");
  expect_reproduces("vace", "e2e_vace",
                    {"VaceToVideo.strength=" + number(g.kwargs["context_scale"].get<double>())});
}

}  // namespace
}  // namespace wan::runner::testing
