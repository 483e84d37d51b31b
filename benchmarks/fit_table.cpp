// What fits where: for each official pipeline at 480P and 720P (81 frames), on cards of 4 to
// 24 GiB, what placement auto chooses for the shipped workflows/<task>/auto.json (placements and
// VAE tiles), the planned device and CPU peaks, and the bytes moved onto the device per sampling
// step. Planned from the official checkpoints' shapes (--preset): nothing is loaded, so it runs
// anywhere in seconds. Each 14B pipeline is planned twice: with the workflow's fp16 DiT file and
// with ComfyUI's fp8_e4m3fn one (kept as fp8, upcast per layer), the file that keeps the CPU
// peak within 24 GiB. The CPU peak is a CUDA machine's: `stream` page-locks its streamed blocks
// there (a second column: with --page-lock 0). Prints a Markdown table (docs/memory_plan.md).
//
//   build/benchmarks/fit_table [--steps N]
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "graph/workflow_json.h"
#include "nodes/wan_nodes.h"
#include "plan/auto_placement.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Pipeline {
  const char* preset;
  const char* task;
  bool fp8_dit;  // LoadDiT reads the *_fp8_e4m3fn file instead of the workflow's *_fp16 one
};

constexpr Pipeline kPipelines[] = {
    {"t2v-1.3B", "t2v", false},   {"t2v-14B", "t2v", false},     {"t2v-14B", "t2v", true},
    {"i2v-14B", "i2v", false},    {"i2v-14B", "i2v", true},      {"flf2v-14B", "flf2v", false},
    {"flf2v-14B", "flf2v", true}, {"vace-14B", "vace", false},   {"vace-14B", "vace", true}};
constexpr int kBudgetsGiB[] = {3, 4, 6, 8, 10, 12, 16, 24};

struct Resolution {
  const char* name;
  int64_t width, height;
};
constexpr Resolution kResolutions[] = {{"480P", 832, 480}, {"720P", 1280, 720}};

std::string gib(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", static_cast<double>(bytes) / (1 << 30));
  return text;
}

// The workflow's size and step inputs on every node that has them, and the DiT file.
json sized(json prompt, const Resolution& r, int64_t steps, bool fp8_dit) {
  for (auto& [id, node] : prompt.items()) {
    auto& inputs = node["inputs"];
    if (fp8_dit && node["class_type"] == "LoadDiT") {
      std::string name = inputs["model_name"].get<std::string>();
      const auto fp16 = name.find("_fp16");
      if (fp16 != std::string::npos) name.replace(fp16, 5, "_fp8_e4m3fn");
      inputs["model_name"] = name;
    }
    if (inputs.contains("width") && inputs["width"].is_number()) {
      inputs["width"] = r.width;
      inputs["height"] = r.height;
      inputs["frames"] = 81;
    }
    if (node["class_type"] == "Sample") inputs["steps"] = steps;
  }
  return prompt;
}

// "dit stream, t5 cpu, vae gpu (tile 512)" from the choices.
std::string choices_text(const wan::plan::AutoPlacement& resolved) {
  std::string text;
  for (const auto& c : resolved.choices) {
    if (c.input == "placement") {
      std::string model = c.class_type.substr(4);  // "LoadDiT" -> "DiT"
      text += (text.empty() ? "" : ", ") + model + " " + c.value;
    } else if (c.input == "resident_blocks") {
      if (c.value != "0") text += ", " + c.value + " DiT blocks resident";
    } else if (c.input == "vace_activations") {
      if (c.value == "cpu") text += ", VACE activations parked";
    } else if (c.value != "0") {
      text += ", " + c.class_type + " tile " + c.value;
    }
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t steps = 50;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--steps") == 0 && i + 1 < argc) steps = std::stoll(argv[++i]);
  }
  spdlog::set_level(spdlog::level::warn);
  const auto& registry = wan::nodes::wan_node_registry();
  const fs::path workflows = fs::path(WAN_SOURCE_DIR) / "workflows";
  std::printf("| pipeline | size | card | fits | auto chooses | device peak GiB | CPU peak GiB "
              "| CPU peak GiB, --page-lock 0 | moved per step GiB | moved per run GiB |\n"
              "|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& pipeline : kPipelines) {
    const json shipped = wan::graph::to_api_prompt(
        wan::graph::read_json_file(workflows / pipeline.task / "auto.json"), registry);
    for (const auto& resolution : kResolutions) {
      const json prompt = sized(shipped, resolution, steps, pipeline.fp8_dit);
      const std::string name = std::string(pipeline.preset) + (pipeline.fp8_dit ? " fp8" : "");
      for (const int budget : kBudgetsGiB) {
        wan::plan::PlanOptions options;
        options.models_dir = fs::temp_directory_path() / "wan_fit_table_no_models";
        options.preset = pipeline.preset;
        options.device.device = "cpu";
        options.device.vram = int64_t{budget} << 30;
        options.page_locked_streaming = true;  // the cards are CUDA ones
        options.device.page_lock = int64_t{1} << 50;  // every block: the machine's RAM aside
        try {
          const auto resolved = wan::plan::resolve_auto_placement(prompt, registry, options);
          const auto& plan = resolved.plan;
          int64_t per_step = 0;
          for (const auto& node : plan.nodes)
            if (node.class_type == "Sample") per_step = node.bytes_in / steps;
          // The same choices with nothing page-locked: the CPU memory the copies' overlap costs.
          wan::plan::PlanOptions pageable = options;
          pageable.device.page_lock = 0;
          const auto unlocked = wan::plan::plan_prompt(resolved.prompt, registry, pageable);
          std::printf("| %s | %s | %d GiB | %s | %s | %s | %s | %s | %s | %s |\n", name.c_str(),
                      resolution.name, budget, resolved.fits ? "yes" : "no",
                      choices_text(resolved).c_str(), gib(plan.device_peak).c_str(),
                      gib(plan.cpu_peak).c_str(), gib(unlocked.cpu_peak).c_str(),
                      gib(per_step).c_str(), gib(plan.transfer_bytes).c_str());
        } catch (const std::exception& e) {
          std::printf("| %s | %s | %d GiB | error | %s | | | | | |\n", name.c_str(),
                      resolution.name, budget, e.what());
        }
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
