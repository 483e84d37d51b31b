// Plans of the official checkpoints (presets) on a 12 GB-class card: the table of
// docs/memory_plan.md, and the T2V-1.3B pattern the shipped workflows must show.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "core/error.h"
#include "device/compute_device.h"
#include "graph/workflow_json.h"
#include "models/t5/umt5_encoder.h"
#include "plan/memory_plan.h"
#include "test_util.h"
#include "nodes/wan_nodes.h"

namespace wan::plan {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Placements {
  const char* name;
  const char* t5;
  const char* vae;
};
const Placements kPlacements[] = {{"baseline", "offload", "gpu"},
                                  {"vae_cpu", "offload", "offload"},
                                  {"t5_cpu", "cpu", "gpu"},
                                  {"vae_cpu_t5_cpu", "cpu", "offload"}};

// A shipped workflow (UI format) as an API prompt.
json shipped(const std::string& kind, const Placements& p) {
  const fs::path file = fs::path(WAN_TEST_DATA_DIR).parent_path().parent_path() / "workflows" /
                        kind / (std::string(p.name) + ".json");
  return graph::to_api_prompt(graph::read_json_file(file), wan::nodes::wan_node_registry());
}

PlanOptions preset_options(const std::string& preset) {
  PlanOptions options;
  options.models_dir = fs::temp_directory_path() / "wan_plan_no_models";
  options.preset = preset;
  options.device.device = "cpu";
  options.device.vram = device::parse_size("11.49GiB");  // default reserve 0.5 GiB
  return options;
}

// The shipped T5, umt5_xxl_fp8_e4m3fn_scaled, stays fp8 in memory: 6.27 GiB instead of 10.58 GiB
// in bf16, so every T2V-1.3B placement fits an 11.49 GiB card.
TEST(PresetPlan, T2v13BOn1149GiBFitsEveryPlacementWithTheT5KeptInFp8) {
  const auto config = models::Umt5Config::umt5_xxl();
  const int64_t d = config.dim(), f = config.dim_ffn(), layers = config.num_layers();
  // fp8 linear weights, one float32 scale each; bf16 embedding, norms and position biases.
  const int64_t t5_bytes = layers * (4 * d * d + 3 * d * f) + layers * 7 * 4 +
                           2 * (config.vocab() * d + (2 * layers + 1) * d +
                                layers * config.num_buckets() * config.num_heads());
  for (const auto& p : kPlacements) {
    const auto plan = plan_prompt(shipped("t2v", p), wan::nodes::wan_node_registry(),
                                  preset_options("t2v-1.3B"));
    std::printf("%s\n", plan.text.c_str());
    EXPECT_TRUE(plan.fits) << p.name << ": " << plan.first_oom_message;
    for (const auto& [name, bytes] : plan.model_bytes) {
      if (name == "t5") {
        EXPECT_EQ(bytes, t5_bytes);
      }
    }
  }
}

// Wan's generate.py loads the official bf16 T5 (models_t5_umt5-xxl-enc-bf16.pth, 10.58 GiB in
// memory): with it the four configurations give generate.py's outcomes on an 11.49 GiB card,
// baseline out of memory moving the T5 in, the three others fitting.
TEST(PresetPlan, T2v13BOn1149GiBWithTheOfficialBf16T5FailsOnlyWhenT5AndVaeShareTheCard) {
  for (const auto& p : kPlacements) {
    json prompt = shipped("t2v", p);
    for (auto& [id, node] : prompt.items())
      if (node["class_type"] == "LoadT5")
        node["inputs"]["model_name"] = "models_t5_umt5-xxl-enc-bf16.pth";
    const auto plan = plan_prompt(prompt, wan::nodes::wan_node_registry(), preset_options("t2v-1.3B"));
    for (const auto& [name, bytes] : plan.model_bytes) {
      if (name == "t5") {
        EXPECT_GT(bytes, device::parse_size("10.5GiB")) << p.name;
      }
    }
    if (std::string(p.name) == "baseline") {
      EXPECT_FALSE(plan.fits);
      EXPECT_EQ(plan.nodes.back().class_type, "EncodePrompt");
      EXPECT_NE(plan.first_oom_message.find("vgpu out of memory moving t5 tensor '"),
                std::string::npos)
          << plan.first_oom_message;
    } else {
      EXPECT_TRUE(plan.fits) << p.name << ": " << plan.first_oom_message;
    }
  }
}

// On a 7.5 GiB card (7 GiB usable) the T5 and the VAE still fit side by side, but not with the
// T5's activations: only the placements that keep them apart complete.
TEST(PresetPlan, T2v13BOn75GiBFailsOnlyWhenT5AndVaeShareTheCard) {
  for (const auto& p : kPlacements) {
    auto options = preset_options("t2v-1.3B");
    options.device.vram = device::parse_size("7.5GiB");
    const auto plan = plan_prompt(shipped("t2v", p), wan::nodes::wan_node_registry(), options);
    if (std::string(p.name) == "baseline") {
      EXPECT_FALSE(plan.fits);
      EXPECT_EQ(plan.nodes.back().class_type, "EncodePrompt");
      EXPECT_NE(plan.first_oom_message.find("vgpu out of memory: tried to allocate"),
                std::string::npos)
          << plan.first_oom_message;
      EXPECT_NE(plan.first_oom_message.find("T5 activations"), std::string::npos)
          << plan.first_oom_message;
    } else {
      EXPECT_TRUE(plan.fits) << p.name << ": " << plan.first_oom_message;
    }
  }
}

TEST(PresetPlan, ConditionedPresetsTable) {
  std::printf("| card | preset | config | fits | peak | peak in | moved in | first OOM |\n");
  for (const std::string vram : {"11.49GiB", "24GB", "80GB"})
  for (const std::string preset : {"t2v-1.3B", "i2v-14B", "flf2v-14B", "vace-1.3B"}) {
    const std::string kind = preset.substr(0, preset.find('-'));
    for (const auto& p : kPlacements) {
      const json prompt = shipped(kind, p);
      auto options = preset_options(preset);
      options.device.vram = device::parse_size(vram);
      const auto plan = plan_prompt(prompt, wan::nodes::wan_node_registry(), options);
      std::printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", vram.c_str(), preset.c_str(), p.name,
                  plan.fits ? "yes" : "no", format_bytes(plan.device_peak).c_str(),
                  plan.device_peak_node.c_str(), format_bytes(plan.transfer_bytes).c_str(),
                  plan.first_oom_message.substr(0, 110).c_str());
      ASSERT_FALSE(plan.nodes.empty());
      if (kind == "t2v" && preset == "t2v-1.3B") continue;
      if (!plan.fits) continue;
      // Every planned node on a 14B model that fits keeps within the card.
      EXPECT_LE(plan.device_peak, plan.capacity);
    }
  }
}

// The Wan2.1 README reports 8.19 GB peak for T2V-1.3B at 480P with --offload_model True --t5_cpu
// on an RTX 4090: the official code keeps the DiT in float32 and the VAE on the card.
TEST(PresetPlan, ReadmeT2v13BOffloadT5CpuCrossCheck) {
  json prompt = shipped("t2v", kPlacements[2]);  // t5_cpu: VAE gpu, DiT offload, T5 cpu
  graph::apply_override(prompt, "LoadDiT.weight_dtype=fp32", wan::nodes::wan_node_registry());
  auto options = preset_options("t2v-1.3B");
  options.device.vram = device::parse_size("24GB");  // an RTX 4090
  const auto plan = plan_prompt(prompt, wan::nodes::wan_node_registry(), options);
  std::printf("%s\nREADME cross-check: planned peak %.2f GB (%s) vs 8.19 GB reported\n",
              plan.text.c_str(), static_cast<double>(plan.device_peak) / 1e9,
              plan.device_peak_node.c_str());
  EXPECT_TRUE(plan.fits);
  EXPECT_NEAR(static_cast<double>(plan.device_peak) / 1e9, 8.19, 0.25 * 8.19);
}

}  // namespace
}  // namespace wan::plan
