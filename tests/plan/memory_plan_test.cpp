// Budgeted runs of the four T2V placements on small random-weight models whose proportions match
// the full-size situation (the T5 encoder outweighs the VAE and its decode activations), against
// the memory plan of the same prompts.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "core/error.h"
#include "device/device_manager.h"
#include "graph/executor.h"
#include "graph/workflow_json.h"
#include "io/safetensors.h"
#include "models/t5/umt5_encoder.h"
#include "plan/memory_plan.h"
#include "test_util.h"
#include "nodes/wan_nodes.h"

namespace wan::plan {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// UMT5 with the tiny vocabulary and width (the tiny DiT reads 64-wide text) but many layers and a
// wide FFN: ~9.7 M parameters, 19.3 MB in bf16, against the tiny VAE's ~5 MB.
const models::Umt5Config kLargeT5(/*vocab=*/512, /*dim=*/64, /*dim_attn=*/64, /*dim_ffn=*/4096,
                                  /*num_heads=*/4, /*num_layers=*/12);

// A models folder: the tiny VAE/DiT/tokenizer of tests/data/models and the large T5.
const fs::path& models_dir() {
  static const fs::path dir = [] {
    const fs::path root = fs::temp_directory_path() / ("wan_plan_models_" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root / "text_encoders");
    const fs::path data = wan::testing::data_path("models");
    for (const char* folder : {"vae", "diffusion_models", "tokenizers"})
      fs::create_directory_symlink(data / folder, root / folder);
    at::manual_seed(1234);
    io::TensorMap tensors;
    for (const auto& info : models::umt5_expected_tensors(kLargeT5, at::kFloat)) {
      const bool norm = info.name.find("norm") != std::string::npos;
      tensors[info.name] = norm ? at::ones(info.shape) : at::randn(info.shape) * 0.05;
    }
    io::save_safetensors((root / "text_encoders" / "t5_large.safetensors").string(), tensors);
    std::ofstream(root / "text_encoders" / "t5_large_config.json") << R"({"text_len": 32})";
    return root;
  }();
  return dir;
}

// What the runtime holds besides tensors; tiny next to the test models.
constexpr int64_t kReserve = int64_t{1} << 20;

struct Config {
  const char* name;
  const char* t5_placement;
  const char* vae_placement;
};
// Wan's flags: --t5_cpu is T5 placement=cpu; the VAE's offload is the seed's --vae_cpu.
const Config kConfigs[] = {{"baseline", "offload", "gpu"},
                           {"vae_cpu", "offload", "offload"},
                           {"t5_cpu", "cpu", "gpu"},
                           {"vae_cpu_t5_cpu", "cpu", "offload"}};

// The shipped T2V workflow of the configuration with the runner's --set overrides that point it
// at the small models: 64x64x9 (3 latent frames), 2 steps.
json t2v_prompt(const Config& config) {
  const fs::path file = fs::path(WAN_TEST_DATA_DIR).parent_path().parent_path() / "workflows" /
                        "t2v" / (std::string(config.name) + ".json");
  const auto& registry = wan::nodes::wan_node_registry();
  json prompt = graph::to_api_prompt(graph::read_json_file(file), registry);
  for (const char* assignment :
       {"LoadT5.model_name=t5_large.safetensors", "LoadT5.tokenizer=wan_tiny",
        "LoadVAE.model_name=vae_tiny.pth", "LoadDiT.model_name=dit_t2v_tiny.safetensors",
        "Sample.width=64", "Sample.height=64", "Sample.frames=9", "Sample.steps=2"})
    graph::apply_override(prompt, assignment, registry);
  EXPECT_EQ(prompt["2"]["inputs"]["placement"], config.t5_placement) << config.name;
  EXPECT_EQ(prompt["3"]["inputs"]["placement"], config.vae_placement) << config.name;
  return prompt;
}

PlanOptions plan_options(int64_t capacity) {
  PlanOptions options;
  options.models_dir = models_dir();
  options.device.device = "cpu";
  options.device.reserve = kReserve;
  options.device.vram = capacity + kReserve;
  return options;
}

struct Measured {
  bool ok = false;
  std::string error;
  json ledger;
  at::Tensor decoded;
  int64_t peak = 0;  // highest vgpu bytes over the run
  int64_t cpu_peak = 0;
  bool output_written = false;
};

// A real run through the executor with a budgeted device manager; the ledger brackets each node.
Measured run_budgeted(const json& prompt, int64_t capacity, const std::string& tag) {
  device::ComputeDeviceOptions options;
  options.device = "cpu";
  options.reserve = kReserve;
  options.vram = capacity + kReserve;
  device::DeviceManager devices(options);
  graph::Executor executor(wan::nodes::wan_node_registry());
  graph::RunContext run;
  run.models_dir = models_dir();
  run.output_dir = models_dir().parent_path() / ("wan_plan_out_" + tag + std::to_string(::getpid()));
  fs::remove_all(run.output_dir);
  fs::create_directories(run.output_dir);
  run.device_manager = &devices;
  run.prompt = prompt;
  Measured m;
  try {
    executor.run(prompt, run);
    m.ok = true;
    m.decoded = (*executor.outputs("7"))[0].as_tensor().clone();
  } catch (const graph::NodeError& e) {
    m.error = e.what();
    devices.ledger().end_stage(device::StageOutcome::failure(e.what()));
  }
  m.ledger = devices.ledger().to_json();
  for (const auto& node : m.ledger["nodes"]) {
    m.peak = std::max(m.peak, node["bytes_peak"].value("vgpu", int64_t{0}));
    m.cpu_peak = std::max(m.cpu_peak, node["bytes_peak"].value("cpu", int64_t{0}));
  }
  m.output_written = !fs::is_empty(run.output_dir);
  fs::remove_all(run.output_dir);
  return m;
}

// The four configurations, planned and run once for all tests.
struct Outcomes {
  int64_t capacity = 0;
  std::map<std::string, PlanResult> plans;
  std::map<std::string, Measured> runs;
};

const Outcomes& outcomes() {
  static const Outcomes result = [] {
    Outcomes o;
    // The cap: 15 % above the largest peak the plan predicts for the three configurations that
    // keep T5 and the VAE apart, which must stay below T5 + VAE weights (checked in the tests).
    const int64_t uncapped = int64_t{1} << 40;
    int64_t need = 0;
    for (const auto& config : kConfigs) {
      if (std::string(config.name) == "baseline") continue;
      need = std::max(need,
                      plan_prompt(t2v_prompt(config), wan::nodes::wan_node_registry(), plan_options(uncapped))
                          .device_peak);
    }
    o.capacity = need + need * 15 / 100;
    for (const auto& config : kConfigs) {
      const json prompt = t2v_prompt(config);
      o.plans[config.name] =
          plan_prompt(prompt, wan::nodes::wan_node_registry(), plan_options(o.capacity));
      o.runs[config.name] = run_budgeted(prompt, o.capacity, config.name);
    }
    return o;
  }();
  return result;
}

int64_t model_bytes(const PlanResult& plan, const std::string& name) {
  for (const auto& [n, b] : plan.model_bytes)
    if (n == name) return b;
  return -1;
}

TEST(BudgetedRun, BaselineRunsOutOfMemoryMovingT5InAndTheOthersComplete) {
  const auto& o = outcomes();
  const auto& plan = o.plans.at("baseline");
  // The cap separates the two situations: T5 and the VAE do not fit together.
  ASSERT_LT(o.capacity, model_bytes(plan, "t5") + model_bytes(plan, "vae"));

  const auto& baseline = o.runs.at("baseline");
  ASSERT_FALSE(baseline.ok);
  EXPECT_NE(baseline.error.find("EncodePrompt (node 4): vgpu out of memory moving t5 tensor '"),
            std::string::npos)
      << baseline.error;
  EXPECT_FALSE(baseline.output_written) << "a failed run left an output file";
  const auto& last = baseline.ledger["nodes"].back();
  EXPECT_EQ(last["class_type"], "EncodePrompt");
  EXPECT_EQ(last["outcome"], "error");
  // The move was undone: T5 stays in CPU memory, only the VAE is on the device.
  EXPECT_EQ(last["models"]["t5"], "cpu");
  EXPECT_EQ(last["bytes_after"]["vgpu"].get<int64_t>(), model_bytes(plan, "vae"));

  for (const char* name : {"vae_cpu", "t5_cpu", "vae_cpu_t5_cpu"}) {
    const auto& run = o.runs.at(name);
    EXPECT_TRUE(run.ok) << name << ": " << run.error;
    EXPECT_TRUE(run.output_written) << name;
  }
}

TEST(MemoryPlan, PredictsTheBaselineOutOfMemoryWithTheRunsMessage) {
  const auto& o = outcomes();
  const auto& plan = o.plans.at("baseline");
  EXPECT_FALSE(plan.fits);
  ASSERT_FALSE(plan.nodes.empty());
  EXPECT_EQ(plan.nodes.back().class_type, "EncodePrompt");
  // Same node, model, tensor, requested, free and capacity as the real run.
  EXPECT_EQ(plan.first_oom_message, o.runs.at("baseline").error);
  EXPECT_EQ(plan.json["fits"], false);
  EXPECT_NE(plan.text.find("does not fit"), std::string::npos);
  for (const char* name : {"vae_cpu", "t5_cpu", "vae_cpu_t5_cpu"})
    EXPECT_TRUE(o.plans.at(name).fits) << name << ":\n" << o.plans.at(name).text;
}

TEST(MemoryPlan, WeightBytesMatchTheDeviceManagerExactly) {
  const auto& o = outcomes();
  for (const auto& config : kConfigs) {
    const auto& plan = o.plans.at(config.name);
    const auto& models = o.runs.at(config.name).ledger["models"];
    for (const auto& [name, bytes] : plan.model_bytes) {
      ASSERT_TRUE(models.contains(name)) << config.name << ": " << name;
      EXPECT_EQ(bytes, models[name]["bytes"].get<int64_t>()) << config.name << ": " << name;
    }
  }
}

TEST(MemoryPlan, PredictedDevicePeakWithinTenPercentOfTheMeasuredPeak) {
  const auto& o = outcomes();
  for (const char* name : {"vae_cpu", "t5_cpu", "vae_cpu_t5_cpu"}) {
    const auto& plan = o.plans.at(name);
    const auto& run = o.runs.at(name);
    ASSERT_TRUE(run.ok) << run.error;
    const double measured = static_cast<double>(run.peak);
    std::printf("%-15s vgpu peak: planned %lld (%s), measured %lld, error %+.1f %%; cpu peak: "
                "planned %lld, measured %lld\n",
                name, static_cast<long long>(plan.device_peak), plan.device_peak_node.c_str(),
                static_cast<long long>(run.peak),
                100.0 * (static_cast<double>(plan.device_peak) - measured) / measured,
                static_cast<long long>(plan.cpu_peak), static_cast<long long>(run.cpu_peak));
    for (size_t i = 0; i < run.ledger["nodes"].size() && i < plan.nodes.size(); ++i)
      std::printf("  node %s %-14s vgpu peak planned %10lld measured %10lld | after planned %10lld "
                  "measured %10lld | cpu peak planned %10lld measured %10lld\n",
                  plan.nodes[i].node_id.c_str(), plan.nodes[i].class_type.c_str(),
                  static_cast<long long>(plan.nodes[i].device_peak),
                  static_cast<long long>(run.ledger["nodes"][i]["bytes_peak"]["vgpu"].get<int64_t>()),
                  static_cast<long long>(plan.nodes[i].device_after),
                  static_cast<long long>(run.ledger["nodes"][i]["bytes_after"]["vgpu"].get<int64_t>()),
                  static_cast<long long>(plan.nodes[i].cpu_peak),
                  static_cast<long long>(run.ledger["nodes"][i]["bytes_peak"]["cpu"].get<int64_t>()));
    EXPECT_NEAR(static_cast<double>(plan.device_peak), measured, 0.10 * measured)
        << name << ":\n" << plan.text;
    const double measured_cpu = static_cast<double>(run.cpu_peak);
    EXPECT_NEAR(static_cast<double>(plan.cpu_peak), measured_cpu, 0.10 * measured_cpu) << name;
    // Node by node: the bytes held after each node on the device are exact (weights and the
    // prompt embeddings), and the transfers too.
    const auto& nodes = run.ledger["nodes"];
    ASSERT_EQ(nodes.size(), plan.nodes.size()) << name;
    for (size_t i = 0; i < nodes.size(); ++i) {
      EXPECT_EQ(nodes[i]["node"], plan.nodes[i].node_id);
      EXPECT_EQ(nodes[i]["transfers"]["bytes_in"].get<int64_t>(), plan.nodes[i].bytes_in)
          << name << " node " << plan.nodes[i].node_id;
      EXPECT_EQ(nodes[i]["bytes_after"]["vgpu"].get<int64_t>(), plan.nodes[i].device_after)
          << name << " node " << plan.nodes[i].node_id;
    }
  }
}

TEST(BudgetedRun, EveryPlacementDecodesTheSameFrames) {
  const auto& o = outcomes();
  const at::Tensor& reference = o.runs.at("vae_cpu").decoded;
  ASSERT_TRUE(reference.defined());
  EXPECT_EQ(reference.sizes(), at::IntArrayRef({9, 64, 64, 3}));
  for (const char* name : {"t5_cpu", "vae_cpu_t5_cpu"}) {
    ASSERT_TRUE(o.runs.at(name).decoded.defined()) << name;
    EXPECT_TRUE(at::equal(o.runs.at(name).decoded, reference)) << name << " decodes other frames";
  }
}

}  // namespace
}  // namespace wan::plan
