// The sixteen shipped workflows: their layout against the node schemas, their defaults and
// placements, and an end-to-end run of each through wan-run on the tiny models.
#include <gtest/gtest.h>

#include <map>

#include "graph/validator.h"
#include "runner_test_util.h"
#include "nodes/wan_nodes.h"

namespace wan::runner::testing {
namespace {

struct TaskDefaults {
  int64_t width, height, frames, steps;
  double shift, cfg;
  std::string dit, conditioning;
  std::string negative_prefix;  // before the shared negative prompt
};

// generate.py / wan/configs defaults per task.
const std::map<std::string, TaskDefaults>& task_defaults() {
  static const std::map<std::string, TaskDefaults> defaults = {
      {"t2v", {832, 480, 81, 50, 5.0, 5.0, "wan2.1_t2v_1.3B_fp16.safetensors", "", ""}},
      {"i2v",
       {832, 480, 81, 40, 3.0, 5.0, "wan2.1_i2v_480p_14B_fp16.safetensors", "ImageToVideo",
        "镜头晃动，"}},
      {"flf2v",
       {1280, 720, 81, 50, 16.0, 5.0, "wan2.1_flf2v_720p_14B_fp16.safetensors",
        "FirstLastFrameToVideo", "镜头切换，镜头晃动，"}},
      {"vace",
       {832, 480, 81, 50, 16.0, 5.0, "wan2.1_vace_1.3B_fp16.safetensors", "VaceToVideo", ""}},
  };
  return defaults;
}

const std::string kSharedNegativeStart = "色调艳丽，过曝，静态";

std::string placement_of(const std::string& config, const std::string& model) {
  if (model == "t5") return config.find("t5_cpu") != std::string::npos ? "cpu" : "offload";
  return config.find("vae_cpu") != std::string::npos ? "offload" : "gpu";
}

// Finds the single API node of `class_type` (or titled `title`).
const nlohmann::json& node_of(const nlohmann::json& prompt, const std::string& class_type,
                              const std::string& title = "") {
  const nlohmann::json* found = nullptr;
  for (const auto& [id, node] : prompt.items()) {
    if (node["class_type"] != class_type) continue;
    if (!title.empty() && node["_meta"]["title"] != title) continue;
    EXPECT_EQ(found, nullptr) << "two " << class_type << " nodes titled '" << title << "'";
    found = &node;
  }
  static const nlohmann::json empty = nlohmann::json::object();
  EXPECT_NE(found, nullptr) << "no " << class_type << " titled '" << title << "'";
  return found ? *found : empty;
}

TEST(ShippedWorkflows, WidgetValuesFollowTheNodeSchemas) {
  const auto& registry = wan::nodes::wan_node_registry();
  for (const auto& task : tasks()) {
    for (const auto& config : configs()) {
      SCOPED_TRACE(task + "/" + config);
      const auto ui = graph::read_json_file(workflow_path(task, config));
      ASSERT_TRUE(graph::is_ui_workflow(ui));
      EXPECT_FALSE(ui["groups"].empty());
      std::map<int64_t, nlohmann::json> links;
      for (const auto& link : ui["links"]) links[link[0].get<int64_t>()] = link;
      for (const auto& node : ui["nodes"]) {
        const auto& schema = registry.schema(node["type"].get<std::string>());
        size_t expected = 0;
        // The seed's control_after_generate and an upload button each store one more value.
        for (const auto* input : schema.ordered_inputs())
          if (input->is_widget())
            expected += 1 + input->has_control_after_generate() + !input->upload_kind().empty();
        EXPECT_EQ(node["widgets_values"].size(), expected) << node["type"];
        for (const char* field : {"id", "type", "pos", "size", "mode", "inputs", "outputs"})
          EXPECT_TRUE(node.contains(field)) << node["type"] << " lacks " << field;
        // Each socket slot names a schema socket of the same type, and its link points back.
        for (size_t slot = 0; slot < node["inputs"].size(); ++slot) {
          const auto& in = node["inputs"][slot];
          const auto* input = schema.find_input(in["name"].get<std::string>());
          ASSERT_NE(input, nullptr) << node["type"] << "." << in["name"];
          EXPECT_EQ(in["type"], input->type());
          if (in["link"].is_null()) {
            EXPECT_TRUE(input->is_optional()) << node["type"] << "." << in["name"];
            continue;
          }
          const auto& link = links.at(in["link"].get<int64_t>());
          EXPECT_EQ(link[3], node["id"]);
          EXPECT_EQ(link[4], slot);
        }
      }
    }
  }
}

TEST(ShippedWorkflows, CarryTheOfficialDefaultsAndTheirConfigsPlacements) {
  const auto& registry = wan::nodes::wan_node_registry();
  for (const auto& task : tasks()) {
    const auto& d = task_defaults().at(task);
    for (const auto& config : configs()) {
      SCOPED_TRACE(task + "/" + config);
      const auto prompt =
          graph::to_api_prompt(graph::read_json_file(workflow_path(task, config)), registry);
      const auto& sample = node_of(prompt, "Sample")["inputs"];
      EXPECT_EQ(sample["width"], d.width);
      EXPECT_EQ(sample["height"], d.height);
      EXPECT_EQ(sample["frames"], d.frames);
      EXPECT_EQ(sample["steps"], d.steps);
      EXPECT_EQ(sample["shift"], d.shift);
      EXPECT_EQ(sample["cfg"], d.cfg);
      EXPECT_EQ(sample["solver"], "unipc");
      if (!d.conditioning.empty()) {
        const auto& cond = node_of(prompt, d.conditioning)["inputs"];
        EXPECT_EQ(cond["width"], d.width);
        EXPECT_EQ(cond["height"], d.height);
        EXPECT_EQ(cond["frames"], d.frames);
      }
      const auto& dit = node_of(prompt, "LoadDiT")["inputs"];
      EXPECT_EQ(dit["model_name"], d.dit);
      EXPECT_EQ(dit["placement"], "offload");
      const auto& t5 = node_of(prompt, "LoadT5")["inputs"];
      EXPECT_EQ(t5["model_name"], "umt5_xxl_fp8_e4m3fn_scaled.safetensors");
      EXPECT_EQ(t5["placement"], placement_of(config, "t5"));
      const auto& vae = node_of(prompt, "LoadVAE")["inputs"];
      EXPECT_EQ(vae["model_name"], "wan_2.1_vae.safetensors");
      EXPECT_EQ(vae["placement"], placement_of(config, "vae"));
      if (task == "i2v" || task == "flf2v") {
        EXPECT_EQ(node_of(prompt, "LoadCLIPVision")["inputs"]["model_name"],
                  "clip_vision_h.safetensors");
      }
      EXPECT_FALSE(
          node_of(prompt, "EncodePrompt", "positive")["inputs"]["text"].get<std::string>().empty());
      EXPECT_EQ(
          node_of(prompt, "EncodePrompt", "negative")["inputs"]["text"].get<std::string>().rfind(
              d.negative_prefix + kSharedNegativeStart, 0),
          0u);
      // ComfyUI's own output chain: CreateVideo at Wan's 16 fps, SaveVideo as MP4, a preview.
      EXPECT_EQ(node_of(prompt, "CreateVideo")["inputs"]["fps"], 16.0);
      const auto& save = node_of(prompt, "SaveVideo")["inputs"];
      EXPECT_EQ(save["filename_prefix"], "video/wan_" + task);
      EXPECT_EQ(save["format"], "auto");
      EXPECT_EQ(save["codec"], "auto");
      node_of(prompt, "PreviewImage");
      // Every node is a ComfyUI core node or a pack node, and says which in properties.cnr_id.
      for (const auto& node : graph::read_json_file(workflow_path(task, config))["nodes"]) {
        const auto& schema = registry.schema(node["type"].get<std::string>());
        EXPECT_EQ(node["properties"]["cnr_id"], schema.is_comfy_core() ? "comfy-core" : "wan-native")
            << node["type"];
      }
    }
  }
}

TEST(ShippedWorkflows, ValidateOnceTheirFilesExist) {
  const auto& registry = wan::nodes::wan_node_registry();
  for (const auto& task : tasks()) {
    for (const auto& config : configs()) {
      SCOPED_TRACE(task + "/" + config);
      auto prompt =
          graph::to_api_prompt(graph::read_json_file(workflow_path(task, config)), registry);
      for (const auto& set : tiny_overrides(task, /*fp32=*/false))
        graph::apply_override(prompt, set, registry);
      const auto result = graph::validate_prompt(prompt, registry, {models_dir()});
      EXPECT_TRUE(result.ok) << result.to_json().dump(2);
    }
  }
}

// Every workflow runs end to end through wan-run and writes its video; the four memory
// configurations of a task give bit-identical frames (on a 1 GiB virtual card, so offloaded
// models really move).
TEST(ShippedWorkflows, RunEndToEndAndAllPlacementsGiveBitIdenticalFrames) {
  for (const auto& task : tasks()) {
    at::Tensor reference;
    for (const auto& config : configs()) {
      SCOPED_TRACE(task + "/" + config);
      TempDir dir("e2e_" + task + "_" + config);
      write_api_prompt_with_frames(task, config, dir / "prompt.json");
      const auto result = run_wan(
          with_sets({(dir / "prompt.json").string(), "--models", models_dir().string(), "--output",
                     (dir / "output").string(), "--vram", "1GiB", "--reserve", "0"},
                    tiny_overrides(task, /*fp32=*/false)));
      ASSERT_EQ(result.exit_code, 0) << result.err;
      const auto videos = files_with_suffix(dir / "output" / "video", ".mp4");
      ASSERT_EQ(videos.size(), 1u);
      // PreviewImage wrote one PNG per frame into the temp folder.
      EXPECT_EQ(files_with_suffix(dir / "output" / "temp", ".png").size(),
                static_cast<size_t>(tiny_size(task).frames));
      EXPECT_GT(fs::file_size(videos[0]), 0u);
      const auto frames = saved_frames(dir / "output");
      const auto size = tiny_size(task);
      ASSERT_EQ(frames.sizes(), (std::vector<int64_t>{size.frames, size.height, size.width, 3}));
      if (!reference.defined()) {
        reference = frames;
      } else {
        EXPECT_TRUE(at::equal(frames, reference))
            << "differs from baseline by " << (frames - reference).abs().max().item<float>();
      }
    }
  }
}

}  // namespace
}  // namespace wan::runner::testing
