// LoadDiT's vace_activations through wan-run: parked in CPU memory, the VACE workflow's frames
// are bit-identical to keeping them on the device, and the bytes the parking moves in Sample are
// the bytes its plan counts.
#include <gtest/gtest.h>

#include <fstream>

#include "runner_test_util.h"

namespace wan::runner::testing {
namespace {

struct VaceRun {
  at::Tensor frames;
  int64_t sample_bytes_in = 0, planned_sample_bytes_in = 0;
  std::string log;
};

int64_t sample_bytes_in(const fs::path& report) {
  std::ifstream in(report);
  const json r = json::parse(in);
  for (const auto& node : r.at("nodes"))
    if (node.at("class_type") == "Sample") return node.at("transfers").at("bytes_in").get<int64_t>();
  ADD_FAILURE() << "no Sample in " << report;
  return -1;
}

VaceRun run_vace(const std::string& vace_activations) {
  TempDir dir("vace_parking_" + vace_activations);
  write_api_prompt_with_frames("vace", "vae_cpu", dir / "prompt.json");
  auto sets = tiny_overrides("vace", /*fp32=*/false);
  sets.push_back("LoadDiT.vace_activations=" + vace_activations);
  const std::vector<std::string> head = {(dir / "prompt.json").string(), "--models",
                                         models_dir().string(), "--output",
                                         (dir / "output").string(), "--vram", "1GiB",
                                         "--reserve", "0"};
  VaceRun r;
  auto args = head;
  args.insert(args.end(), {"--report", (dir / "run.json").string()});
  const auto ran = run_wan(with_sets(args, sets));
  EXPECT_EQ(ran.exit_code, 0) << ran.err;
  r.log = ran.err;
  r.frames = saved_frames(dir / "output");
  r.sample_bytes_in = sample_bytes_in(dir / "run.json");
  args = head;
  args.insert(args.end(), {"--plan", "--report", (dir / "plan.json").string()});
  const auto planned = run_wan(with_sets(args, sets));
  EXPECT_EQ(planned.exit_code, 0) << planned.err;
  r.planned_sample_bytes_in = sample_bytes_in(dir / "plan.json");
  return r;
}

TEST(VaceActivations, ParkedInCpuMemoryTheFramesAreTheSameAndTheMovesAreThePlanned) {
  const VaceRun kept = run_vace("device");
  const VaceRun parked = run_vace("cpu");
  ASSERT_TRUE(kept.frames.defined() && parked.frames.defined());
  EXPECT_TRUE(at::equal(parked.frames, kept.frames));
  EXPECT_NE(parked.log.find("VACE activations parked in CPU memory"), std::string::npos)
      << parked.log;
  EXPECT_EQ(kept.log.find("VACE activations parked"), std::string::npos) << kept.log;
  const int64_t moved = parked.sample_bytes_in - kept.sample_bytes_in;
  std::printf("VACE tiny, Sample bytes in: kept %lld, parked %lld (planned %lld, %lld)\n",
              static_cast<long long>(kept.sample_bytes_in),
              static_cast<long long>(parked.sample_bytes_in),
              static_cast<long long>(kept.planned_sample_bytes_in),
              static_cast<long long>(parked.planned_sample_bytes_in));
  EXPECT_GT(moved, 0);
  EXPECT_EQ(moved, parked.planned_sample_bytes_in - kept.planned_sample_bytes_in);
}

}  // namespace
}  // namespace wan::runner::testing
