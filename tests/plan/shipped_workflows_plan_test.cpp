// The memory plan of every shipped workflow (four tasks x four memory configurations) on the tiny
// models, against a real budgeted run of the same prompt: per-device peaks within 10 %, weights
// exact.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "device/compute_device.h"
#include "device/device_manager.h"
#include "graph/executor.h"
#include "graph/workflow_json.h"
#include "plan/memory_plan.h"
#include "test_util.h"
#include "nodes/wan_nodes.h"

namespace wan::plan {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* const kTasks[] = {"t2v", "i2v", "flf2v", "vace"};
const char* const kConfigs[] = {"baseline", "vae_cpu", "t5_cpu", "vae_cpu_t5_cpu"};

// A 1 GiB virtual accelerator with no reserve: every placement fits, offloaded models move.
constexpr int64_t kVram = int64_t{1} << 30;

fs::path models_dir() { return fs::path(wan::testing::data_path("models")); }
fs::path inputs_dir() { return fs::path(wan::testing::data_path("wan-tiny")) / "inputs"; }
fs::path workflow_path(const std::string& task, const std::string& config) {
  return fs::path(WAN_TEST_DATA_DIR).parent_path().parent_path() / "workflows" / task /
         (config + ".json");
}

struct Size {
  int64_t width, height, frames;
};
// The sizes the runner's end-to-end tests use per task (the e2e goldens' sizes).
Size tiny_size(const std::string& task) {
  if (task == "i2v") return {64, 48, 9};
  if (task == "flf2v") return {32, 32, 9};
  return {64, 64, 9};
}

// The --set overrides that point a shipped workflow at the tiny models and inputs (the runner
// tests' overrides, weights in the workflows' own dtypes), two steps.
std::vector<std::string> tiny_overrides(const std::string& task) {
  std::vector<std::string> sets = {"LoadDiT.model_name=dit_" + task + "_tiny.safetensors",
                                   "LoadT5.model_name=t5_tiny_encoder.pth",
                                   "LoadT5.tokenizer=wan_tiny", "LoadVAE.model_name=vae_tiny.pth",
                                   "Sample.steps=2"};
  std::vector<std::string> sized = {"Sample"};
  if (task == "i2v") sized.push_back("ImageToVideo");
  if (task == "flf2v") sized.push_back("FirstLastFrameToVideo");
  if (task == "vace") sized.push_back("VaceToVideo");
  const Size size = tiny_size(task);
  for (const auto& node : sized) {
    sets.push_back(node + ".width=" + std::to_string(size.width));
    sets.push_back(node + ".height=" + std::to_string(size.height));
    sets.push_back(node + ".frames=" + std::to_string(size.frames));
  }
  const std::string inputs = inputs_dir().string() + "/";
  if (task == "i2v" || task == "flf2v") sets.push_back("LoadCLIPVision.model_name=clip_tiny.pth");
  if (task == "i2v") sets.push_back("start image.image=" + inputs + "i2v_image.png");
  if (task == "flf2v") {
    sets.push_back("start image.image=" + inputs + "flf2v_first.png");
    sets.push_back("end image.image=" + inputs + "flf2v_last.png");
  }
  if (task == "vace") {
    sets.push_back("control video.frames=" + inputs + "vace_src_frame_*.png");
    sets.push_back("control masks.frames=" + inputs + "vace_src_mask_*.png");
    sets.push_back("reference image.image=" + inputs + "vace_ref.png");
  }
  return sets;
}

json tiny_prompt(const std::string& task, const std::string& config) {
  const auto& registry = wan::nodes::wan_node_registry();
  json prompt = graph::to_api_prompt(graph::read_json_file(workflow_path(task, config)), registry);
  for (const auto& set : tiny_overrides(task)) graph::apply_override(prompt, set, registry);
  return prompt;
}

struct Measured {
  bool ok = false;
  std::string error;
  json ledger;
  int64_t peak = 0, cpu_peak = 0;
};

// A real run through the executor with a budgeted device manager; the ledger brackets each node.
Measured run_budgeted(const json& prompt, const std::string& tag) {
  device::ComputeDeviceOptions options;
  options.device = "cpu";
  options.reserve = 0;
  options.vram = kVram;
  device::DeviceManager devices(options);
  graph::Executor executor(wan::nodes::wan_node_registry());
  graph::RunContext run;
  run.models_dir = models_dir();
  run.output_dir =
      fs::temp_directory_path() / ("wan_plan_shipped_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(run.output_dir);
  fs::create_directories(run.output_dir);
  run.device_manager = &devices;
  run.prompt = prompt;
  Measured m;
  // CPU memory other tests of this process still hold (their cached runs) is not this run's.
  const int64_t held_before = device::ComputeDevice::host_stats().bytes_current;
  try {
    executor.run(prompt, run);
    m.ok = true;
  } catch (const graph::NodeError& e) {
    m.error = e.what();
    devices.ledger().end_stage(device::StageOutcome::failure(e.what()));
  }
  m.ledger = devices.ledger().to_json();
  for (const auto& node : m.ledger["nodes"]) {
    m.peak = std::max(m.peak, node["bytes_peak"].value("vgpu", int64_t{0}));
    m.cpu_peak = std::max(m.cpu_peak, node["bytes_peak"].value("cpu", int64_t{0}) - held_before);
  }
  fs::remove_all(run.output_dir);
  return m;
}

double error_percent(int64_t planned, int64_t measured) {
  return measured == 0 ? (planned == 0 ? 0.0 : 100.0)
                       : 100.0 * static_cast<double>(planned - measured) / static_cast<double>(measured);
}

void print_nodes(const PlanResult& plan, const Measured& run) {
  const auto& nodes = run.ledger["nodes"];
  for (size_t i = 0; i < nodes.size() && i < plan.nodes.size(); ++i) {
    const auto& n = nodes[i];
    std::printf("    %-4s %-22s vgpu peak %9lld / %9lld  after %9lld / %9lld | cpu peak %9lld / "
                "%9lld  after %9lld / %9lld\n",
                plan.nodes[i].node_id.c_str(), plan.nodes[i].class_type.c_str(),
                static_cast<long long>(plan.nodes[i].device_peak),
                static_cast<long long>(n["bytes_peak"].value("vgpu", int64_t{0})),
                static_cast<long long>(plan.nodes[i].device_after),
                static_cast<long long>(n["bytes_after"].value("vgpu", int64_t{0})),
                static_cast<long long>(plan.nodes[i].cpu_peak),
                static_cast<long long>(n["bytes_peak"].value("cpu", int64_t{0})),
                static_cast<long long>(plan.nodes[i].cpu_after),
                static_cast<long long>(n["bytes_after"].value("cpu", int64_t{0})));
  }
}

TEST(ShippedWorkflowPlan, EveryWorkflowsPeaksWithinTenPercentAndWeightsExact) {
  const auto& registry = wan::nodes::wan_node_registry();
  PlanOptions options;
  options.models_dir = models_dir();
  options.device.device = "cpu";
  options.device.reserve = 0;
  options.device.vram = kVram;
  std::printf("%-22s %12s %12s %7s | %12s %12s %7s  (planned, measured bytes)\n", "workflow",
              "vgpu plan", "vgpu run", "err %", "cpu plan", "cpu run", "err %");
  for (const std::string task : kTasks) {
    for (const std::string config : kConfigs) {
      const std::string name = task + "/" + config;
      SCOPED_TRACE(name);
      const json prompt = tiny_prompt(task, config);
      const PlanResult plan = plan_prompt(prompt, registry, options);
      const Measured run = run_budgeted(prompt, task + "_" + config);
      ASSERT_TRUE(run.ok) << run.error;
      ASSERT_TRUE(plan.fits) << plan.text;
      EXPECT_EQ(plan.device_name, "vgpu");
      std::printf("%-22s %12lld %12lld %+6.1f%% | %12lld %12lld %+6.1f%%\n", name.c_str(),
                  static_cast<long long>(plan.device_peak), static_cast<long long>(run.peak),
                  error_percent(plan.device_peak, run.peak), static_cast<long long>(plan.cpu_peak),
                  static_cast<long long>(run.cpu_peak), error_percent(plan.cpu_peak, run.cpu_peak));
      const bool device_ok = std::abs(static_cast<double>(plan.device_peak - run.peak)) <=
                             0.10 * static_cast<double>(run.peak);
      const bool cpu_ok = std::abs(static_cast<double>(plan.cpu_peak - run.cpu_peak)) <=
                          0.10 * static_cast<double>(run.cpu_peak);
      if (!device_ok || !cpu_ok || std::getenv("WAN_PLAN_NODES")) print_nodes(plan, run);
      EXPECT_GT(run.peak, 0);
      EXPECT_GT(run.cpu_peak, 0);
      EXPECT_NEAR(static_cast<double>(plan.device_peak), static_cast<double>(run.peak),
                  0.10 * static_cast<double>(run.peak))
          << "vgpu peak; plan:\n"
          << plan.text;
      EXPECT_NEAR(static_cast<double>(plan.cpu_peak), static_cast<double>(run.cpu_peak),
                  0.10 * static_cast<double>(run.cpu_peak))
          << "cpu peak";

      // Weights: every model the run loaded, exactly as the device manager counts it.
      const auto& models = run.ledger["models"];
      EXPECT_EQ(plan.model_bytes.size(), models.size());
      for (const auto& [model, bytes] : plan.model_bytes) {
        ASSERT_TRUE(models.contains(model)) << model;
        EXPECT_EQ(bytes, models[model]["bytes"].get<int64_t>()) << model;
      }
      // The timeline covers the same nodes in the same order.
      const auto& nodes = run.ledger["nodes"];
      ASSERT_EQ(nodes.size(), plan.nodes.size());
      for (size_t i = 0; i < nodes.size(); ++i)
        EXPECT_EQ(nodes[i]["node"], plan.nodes[i].node_id);
    }
  }
}

}  // namespace
}  // namespace wan::plan
