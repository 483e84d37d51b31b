// A video file given to WanLoadImageFrames or LoadVideo is planned from its container (frames,
// height, width; media::probe_video) without decoding it, and the planned CPU peak of each
// loader is the measured one within 5 %: an H.264 MP4 of 17 frames of 96x160, written here.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "device/device_manager.h"
#include "graph/executor.h"
#include "media/video_file.h"
#include "media/video_writer.h"
#include "nodes/wan_nodes.h"
#include "plan/memory_plan.h"

namespace wan::plan {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kFrames = 17, kHeight = 96, kWidth = 160;

struct Folders {
  fs::path root = fs::temp_directory_path() / ("wan_video_plan_" + std::to_string(::getpid()));
  Folders() {
    fs::remove_all(root);
    fs::create_directories(root / "input");
    fs::create_directories(root / "output");
    const auto t = at::linspace(0, 1, kFrames).view({kFrames, 1, 1, 1});
    const auto y = at::linspace(0, 1, kHeight).view({1, kHeight, 1, 1});
    const auto x = at::linspace(0, 1, kWidth).view({1, 1, kWidth, 1});
    const auto images = at::cat({t.expand({kFrames, kHeight, kWidth, 1}), y.expand({kFrames, kHeight, kWidth, 1}),
                                 x.expand({kFrames, kHeight, kWidth, 1})}, 3).contiguous();
    media::save_mp4((root / "input" / "clip.mp4").string(), images, 16.0, {});
  }
  ~Folders() { fs::remove_all(root); }
};

TEST(VideoInputPlan, AVideoFileIsPlannedFromItsContainerWithinFivePercent) {
  Folders folders;
  const auto extent = media::probe_video((folders.root / "input" / "clip.mp4").string());
  ASSERT_TRUE(extent.has_value());
  EXPECT_TRUE(extent->video_file);
  EXPECT_EQ(extent->frames, kFrames);
  EXPECT_EQ(extent->height, kHeight);
  EXPECT_EQ(extent->width, kWidth);
  EXPECT_EQ(media::probe_video((folders.root / "input" / "clip.mp4").string(), 5)->frames, 5);

  const json prompt = {
      {"1", {{"class_type", "WanLoadImageFrames"}, {"inputs", {{"frames", "clip.mp4"}, {"frame_load_cap", 0}}}}},
      {"2", {{"class_type", "SaveTensor"}, {"inputs", {{"tensor", json::array({"1", 0})}, {"filename_prefix", "frames"}}}}},
      {"3", {{"class_type", "LoadVideo"}, {"inputs", {{"file", "clip.mp4"}}}}},
      {"4", {{"class_type", "GetVideoComponents"}, {"inputs", {{"video", json::array({"3", 0})}}}}},
      {"5", {{"class_type", "SaveTensor"}, {"inputs", {{"tensor", json::array({"4", 0})}, {"filename_prefix", "video"}}}}},
  };
  const auto& registry = wan::nodes::wan_node_registry();
  PlanOptions options;
  options.models_dir = folders.root;
  options.input_dir = folders.root / "input";
  options.output_dir = folders.root / "output";
  options.device.device = "cpu";
  const PlanResult plan = plan_prompt(prompt, registry, options);

  device::DeviceManager devices(options.device);
  graph::Executor executor(registry);
  graph::RunContext context;
  context.models_dir = folders.root;
  context.input_dir = folders.root / "input";
  context.output_dir = folders.root / "output";
  context.device_manager = &devices;
  context.prompt = prompt;
  // What earlier tests in this process still hold is not the run's.
  const int64_t held_before_run = device::ComputeDevice::host_stats().bytes_current;
  executor.run(prompt, context);
  const json ledger = devices.ledger().to_json();
  ASSERT_EQ((*executor.outputs("1"))[0].as_tensor().sizes(), (at::IntArrayRef{kFrames, kHeight, kWidth, 3}));

  const int64_t image = 12 * kFrames * kHeight * kWidth;
  int checked = 0;
  for (size_t i = 0; i < plan.nodes.size(); ++i) {
    const auto& planned = plan.nodes[i];
    if (planned.class_type != "WanLoadImageFrames" && planned.class_type != "LoadVideo") continue;
    SCOPED_TRACE(planned.class_type);
    ++checked;
    // What the node itself adds, above what the node before it left held: planned and measured
    // (the ledger's stages are in the same execution order).
    const int64_t planned_before = i == 0 ? 0 : plan.nodes[i - 1].cpu_after;
    const auto& stages = ledger["nodes"];
    ASSERT_EQ(stages[i]["node"], planned.node_id);
    const int64_t before =
        i == 0 ? held_before_run : stages[i - 1]["bytes_after"]["cpu"].get<int64_t>();
    const int64_t peak = stages[i]["bytes_peak"]["cpu"].get<int64_t>() - before;
    const int64_t held = stages[i]["bytes_after"]["cpu"].get<int64_t>() - before;
    std::printf("%s: CPU peak planned %lld, measured %lld; held planned %lld, measured %lld\n",
                planned.class_type.c_str(), static_cast<long long>(planned.cpu_peak - planned_before),
                static_cast<long long>(peak), static_cast<long long>(planned.cpu_after - planned_before),
                static_cast<long long>(held));
    EXPECT_EQ(planned.cpu_after - planned_before, image);
    EXPECT_NEAR(static_cast<double>(held), static_cast<double>(image), 0.01 * image);
    EXPECT_NEAR(static_cast<double>(planned.cpu_peak - planned_before), static_cast<double>(peak),
                0.05 * peak);
  }
  EXPECT_EQ(checked, 2);
}

}  // namespace
}  // namespace wan::plan
