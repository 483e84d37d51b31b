// The plan of a run whose T5 is ComfyUI's scaled fp8 layout (Hugging Face names, fp8 linear
// weights with float32 scales, float32 embeddings and norms) against the run itself: the T5
// stays fp8 on both sides, its bytes agree exactly with the device manager's, the bytes moved in
// for each EncodePrompt too, and the EncodePrompt peak (activations plus the computing layer's
// weight cast to bf16) within 10 %.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "device/device_manager.h"
#include "graph/executor.h"
#include "graph/workflow_json.h"
#include "io/safetensors.h"
#include "models/t5/t5_key_layout.h"
#include "models/t5/umt5_encoder.h"
#include "plan/memory_plan.h"
#include "test_util.h"
#include "nodes/wan_nodes.h"

namespace wan::plan {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The tiny DiT's 64-wide text, a wide FFN so that the weights dominate: ~4.9 M parameters.
const models::Umt5Config kT5(/*vocab=*/512, /*dim=*/64, /*dim_attn=*/64, /*dim_ffn=*/4096,
                             /*num_heads=*/4, /*num_layers=*/6);

struct ModelsDir {
  fs::path root;
  int64_t fp8_bytes = 0;  // the linear weights as stored
  ModelsDir() : root(fs::temp_directory_path() / ("wan_plan_fp8_" + std::to_string(::getpid()))) {
    fs::remove_all(root);
    fs::create_directories(root / "text_encoders");
    const fs::path data = wan::testing::data_path("models");
    for (const char* folder : {"vae", "diffusion_models", "tokenizers"})
      fs::create_directory_symlink(data / folder, root / folder);
    at::manual_seed(99);
    io::TensorMap official;
    for (const auto& info : models::umt5_expected_tensors(kT5, at::kFloat)) {
      const bool norm = info.name.find("norm") != std::string::npos;
      const auto value = norm ? at::ones(info.shape) : at::randn(info.shape) * 0.05;
      if (info.shape.size() != 2 || info.name.find("embedding") != std::string::npos) {
        official[info.name] = value;
        continue;
      }
      const auto scale = (value.abs().max() / 448.0).to(at::kFloat);
      official[info.name] = (value / scale).to(at::kFloat8_e4m3fn);
      official[info.name.substr(0, info.name.size() - 6) + "scale_weight"] = scale;
      fp8_bytes += value.numel();
    }
    auto hf = models::official_to_hf_t5(std::move(official));
    hf["scaled_fp8"] = at::empty({0}, at::kFloat8_e4m3fn);
    io::save_safetensors((root / "text_encoders" / "t5_fp8_scaled.safetensors").string(), hf);
    std::ofstream(root / "text_encoders" / "t5_fp8_scaled_config.json") << R"({"text_len": 32})";
  }
  ~ModelsDir() { fs::remove_all(root); }
};

// The shipped vae_cpu workflow (T5 offloaded: moved in for each prompt) on the small models.
json prompt() {
  const fs::path file = fs::path(WAN_TEST_DATA_DIR).parent_path().parent_path() / "workflows" /
                        "t2v" / "vae_cpu.json";
  const auto& registry = wan::nodes::wan_node_registry();
  json p = graph::to_api_prompt(graph::read_json_file(file), registry);
  for (const char* assignment :
       {"LoadT5.model_name=t5_fp8_scaled.safetensors", "LoadT5.tokenizer=wan_tiny",
        "LoadVAE.model_name=vae_tiny.pth", "LoadDiT.model_name=dit_t2v_tiny.safetensors",
        "Sample.width=64", "Sample.height=64", "Sample.frames=9", "Sample.steps=1"})
    graph::apply_override(p, assignment, registry);
  return p;
}

TEST(Fp8T5Plan, WeightsStayFp8AndThePlanAgreesWithTheRun) {
  ModelsDir models;
  constexpr int64_t kCapacity = int64_t{1} << 30;
  PlanOptions options;
  options.models_dir = models.root;
  options.device.device = "cpu";
  options.device.reserve = 0;
  options.device.vram = kCapacity;
  const auto plan = plan_prompt(prompt(), wan::nodes::wan_node_registry(), options);
  ASSERT_TRUE(plan.fits) << plan.text;

  device::DeviceManager devices(options.device);
  graph::Executor executor(wan::nodes::wan_node_registry());
  graph::RunContext run;
  run.models_dir = models.root;
  run.output_dir = models.root / "output";
  fs::create_directories(run.output_dir);
  run.device_manager = &devices;
  run.prompt = prompt();
  executor.run(run.prompt, run);
  const auto ledger = devices.ledger().to_json();

  int64_t t5_bytes = -1;
  for (const auto& [name, bytes] : plan.model_bytes)
    if (name == "t5") t5_bytes = bytes;
  EXPECT_EQ(t5_bytes, ledger["models"]["t5"]["bytes"].get<int64_t>());
  // fp8 weights (one byte each) and their scales, float32 embeddings and norms: far below the
  // bf16 copy (2 bytes per weight) a load-time dequantization would keep.
  EXPECT_LT(t5_bytes, 2 * models.fp8_bytes);
  EXPECT_GT(t5_bytes, models.fp8_bytes);

  ASSERT_EQ(ledger["nodes"].size(), plan.nodes.size());
  for (size_t i = 0; i < plan.nodes.size(); ++i) {
    const auto& node = ledger["nodes"][i];
    EXPECT_EQ(node["transfers"]["bytes_in"].get<int64_t>(), plan.nodes[i].bytes_in)
        << plan.nodes[i].class_type << " (node " << plan.nodes[i].node_id << ")";
    if (plan.nodes[i].class_type != "EncodePrompt") continue;
    const double measured = node["bytes_peak"]["vgpu"].get<double>();
    std::printf("EncodePrompt (node %s): vgpu peak planned %lld, measured %.0f (%+.1f %%)\n",
                plan.nodes[i].node_id.c_str(), static_cast<long long>(plan.nodes[i].device_peak),
                measured, 100.0 * (plan.nodes[i].device_peak - measured) / measured);
    EXPECT_NEAR(static_cast<double>(plan.nodes[i].device_peak), measured, 0.10 * measured);
  }
}

}  // namespace
}  // namespace wan::plan
