// `placement: auto`: the planner's choice per loader on the official checkpoints (presets), and
// the smallest card a graph fits on.
#include "plan/auto_placement.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/error.h"
#include "device/compute_device.h"
#include "device/placement.h"
#include "graph/workflow_json.h"
#include "test_util.h"
#include "nodes/wan_nodes.h"

namespace wan::plan {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json shipped(const std::string& task, const std::string& config) {
  const fs::path file = fs::path(WAN_TEST_DATA_DIR).parent_path().parent_path() / "workflows" /
                        task / (config + ".json");
  return graph::to_api_prompt(graph::read_json_file(file), wan::nodes::wan_node_registry());
}

PlanOptions preset_options(const std::string& preset, const std::string& vram) {
  PlanOptions options;
  options.models_dir = fs::temp_directory_path() / "wan_plan_no_models";
  options.preset = preset;
  options.device.device = "cpu";
  options.device.vram = device::parse_size(vram);
  return options;
}

int count_placement(const json& prompt, const std::string& placement) {
  int n = 0;
  for (const auto& [id, node] : prompt.items())
    if (node["inputs"].value("placement", "") == placement) ++n;
  return n;
}

const char* const kPresets[][2] = {
    {"t2v", "t2v-1.3B"}, {"i2v", "i2v-14B"}, {"flf2v", "flf2v-14B"}, {"vace", "vace-14B"}};

TEST(AutoPlacement, EveryTaskFitsAt1149And6GiBAndTheChoiceIsThePlanned) {
  for (const auto& [task, preset] : kPresets) {
    for (const char* vram : {"11.49GiB", "6GiB"}) {
      SCOPED_TRACE(std::string(task) + " " + preset + " " + vram);
      const json prompt = shipped(task, "auto");
      ASSERT_GE(count_placement(prompt, "auto"), 3);
      const auto options = preset_options(preset, vram);
      const AutoPlacement result = resolve_auto_placement(prompt, wan::nodes::wan_node_registry(), options);
      EXPECT_TRUE(result.fits) << result.summary;
      EXPECT_EQ(count_placement(result.prompt, "auto"), 0);
      size_t placements = 0, tiles = 0;
      for (const auto& choice : result.choices) {
        if (choice.input == "placement") ++placements;
        if (choice.input == "tile_size") ++tiles;
      }
      EXPECT_EQ(placements, static_cast<size_t>(count_placement(prompt, "auto")));
      // Every VAE node of the shipped auto workflows leaves its tile to the planner.
      EXPECT_GE(tiles, 1u);
      // The reported plan is the plan of the resolved prompt.
      const PlanResult again = plan_prompt(result.prompt, wan::nodes::wan_node_registry(), options);
      EXPECT_TRUE(again.fits);
      EXPECT_EQ(again.device_peak, result.plan.device_peak);
      EXPECT_EQ(again.transfer_bytes, result.plan.transfer_bytes);
      for (const auto& choice : result.choices) {
        const json& chosen = result.prompt[choice.node_id]["inputs"][choice.input];
        EXPECT_EQ(chosen.is_string() ? chosen.get<std::string>() : chosen.dump(), choice.value);
        EXPECT_NE(result.summary.find(choice.class_type + " (node " + choice.node_id + ") -> " +
                                      choice.value),
                  std::string::npos)
            << result.summary;
      }
    }
  }
}

// tile_size -1 steps down only when needed: every tile the planner picked is smaller than a
// candidate that ran out of memory in that node, with the rest of the choice kept.
TEST(AutoPlacement, AutoTilesAreTheLargestThatFit) {
  int tiled = 0;
  for (const auto& [task, preset] : kPresets) {
    for (const char* vram : {"4GiB", "6GiB", "11.49GiB"}) {
      SCOPED_TRACE(std::string(task) + " " + preset + " " + vram);
      const auto options = preset_options(preset, vram);
      const AutoPlacement result =
          resolve_auto_placement(shipped(task, "auto"), wan::nodes::wan_node_registry(), options);
      for (const auto& choice : result.choices) {
        if (choice.input != "tile_size" || choice.value == "0" || !result.fits) continue;
        ++tiled;
        json larger = result.prompt;
        larger[choice.node_id]["inputs"]["tile_size"] = 0;  // untiled, the first candidate
        const PlanResult plan = plan_prompt(larger, wan::nodes::wan_node_registry(), options);
        ASSERT_FALSE(plan.fits) << choice.class_type << " tile " << choice.value;
        EXPECT_EQ(plan.nodes.back().node_id, choice.node_id) << plan.first_oom_message;
      }
    }
  }
  // At 4 GiB the 480P decode does not fit untiled next to the DiT's blocks.
  EXPECT_GT(tiled, 0);
}

TEST(AutoPlacement, T2v13BOn1149GiBComputesEveryModelOnTheCard) {
  // Baseline (T5 offloaded, VAE on the card) is one of the combinations that keep every model
  // computing on the device; auto must find one and never pick a slower CPU placement.
  const auto options = preset_options("t2v-1.3B", "11.49GiB");
  const AutoPlacement result =
      resolve_auto_placement(shipped("t2v", "auto"), wan::nodes::wan_node_registry(), options);
  ASSERT_TRUE(result.fits) << result.summary;
  EXPECT_EQ(count_placement(result.prompt, "cpu"), 0) << result.summary;
  // No other all-on-device combination moves fewer bytes: each fixed workflow, where it fits,
  // moves at least as much.
  for (const char* config : {"baseline", "vae_cpu"}) {
    const PlanResult fixed = plan_prompt(shipped("t2v", config), wan::nodes::wan_node_registry(), options);
    if (fixed.fits) {
      EXPECT_LE(result.plan.transfer_bytes, fixed.transfer_bytes) << config;
    }
  }
}

TEST(AutoPlacement, ACardTooSmallForTheDeviceLeavesEveryModelOnTheCpu) {
  const auto options = preset_options("t2v-1.3B", "1GiB");
  const AutoPlacement result =
      resolve_auto_placement(shipped("t2v", "auto"), wan::nodes::wan_node_registry(), options);
  ASSERT_TRUE(result.fits) << result.summary;
  EXPECT_EQ(count_placement(result.prompt, "cpu"), 3) << result.summary;
  EXPECT_EQ(result.plan.transfer_bytes, 0);
  EXPECT_NE(result.summary.find("gpu would run out of"), std::string::npos) << result.summary;
}

TEST(AutoPlacement, SmallestFittingVramIsTheEdgeOfFitting) {
  auto options = preset_options("t2v-1.3B", "11.49GiB");
  const json baseline = shipped("t2v", "baseline");
  const int64_t need = smallest_fitting_vram(baseline, wan::nodes::wan_node_registry(), options);
  ASSERT_GT(need, 0);
  options.device.vram = need;
  EXPECT_TRUE(plan_prompt(baseline, wan::nodes::wan_node_registry(), options).fits);
  options.device.vram = need - device::kMiB;
  EXPECT_FALSE(plan_prompt(baseline, wan::nodes::wan_node_registry(), options).fits);
}

TEST(AutoPlacement, APromptWithoutAutoIsPlannedAsIs) {
  const auto options = preset_options("t2v-1.3B", "11.49GiB");
  const json baseline = shipped("t2v", "baseline");
  EXPECT_FALSE(has_auto_placement(baseline, wan::nodes::wan_node_registry()));
  const AutoPlacement result = resolve_auto_placement(baseline, wan::nodes::wan_node_registry(), options);
  EXPECT_TRUE(result.choices.empty());
  EXPECT_EQ(result.prompt, baseline);
}

const AutoChoice* choice_of(const AutoPlacement& result, const std::string& input) {
  for (const auto& choice : result.choices)
    if (choice.input == input) return &choice;
  return nullptr;
}

// VACE-14B at 480P x 81 on a 6 GiB card computes on the card only with its activations parked in
// CPU memory: auto picks vace_activations cpu and streams the DiT; with them kept on the device
// the DiT would have to compute on the CPU.
// A t2v DiT keeps them on the device (the first choice; parking would do nothing).
TEST(AutoPlacement, Vace14BFitsSixGiBByParkingItsActivations) {
  const auto& registry = wan::nodes::wan_node_registry();
  const auto options = preset_options("vace-14B", "6GiB");
  json prompt = shipped("vace", "auto");
  const AutoPlacement parked = resolve_auto_placement(prompt, registry, options);
  ASSERT_TRUE(parked.fits) << parked.summary;
  const AutoChoice* choice = choice_of(parked, "vace_activations");
  ASSERT_NE(choice, nullptr) << parked.summary;
  EXPECT_EQ(choice->value, "cpu") << parked.summary;
  EXPECT_EQ(choice->why, "device would run out of memory");
  EXPECT_EQ(parked.prompt[choice->node_id]["inputs"]["vace_activations"], "cpu");

  const std::string dit = choice->node_id;
  EXPECT_EQ(parked.prompt[dit]["inputs"]["placement"], "stream") << parked.summary;

  // Kept on the device, the DiT fits only computing on the CPU.
  prompt[dit]["inputs"]["vace_activations"] = "device";
  const AutoPlacement kept = resolve_auto_placement(prompt, registry, options);
  ASSERT_TRUE(kept.fits) << kept.summary;
  EXPECT_EQ(kept.prompt[dit]["inputs"]["placement"], "cpu") << kept.summary;
  EXPECT_GT(kept.plan.cpu_work, parked.plan.cpu_work);

  const AutoPlacement t2v =
      resolve_auto_placement(shipped("t2v", "auto"), registry, preset_options("t2v-14B", "6GiB"));
  ASSERT_TRUE(t2v.fits) << t2v.summary;
  ASSERT_NE(choice_of(t2v, "vace_activations"), nullptr);
  EXPECT_EQ(choice_of(t2v, "vace_activations")->value, "device") << t2v.summary;
}

TEST(AutoPlacement, ALoaderRunWithoutAPlanRefusesAuto) {
  try {
    device::parse_placement("auto");
    ADD_FAILURE() << "parse_placement accepted auto";
  } catch (const ValidationError& e) {
    EXPECT_NE(std::string(e.what()).find("chosen by the planner"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace wan::plan
