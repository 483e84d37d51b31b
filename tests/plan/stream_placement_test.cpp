// `stream` placement of the DiT against `gpu`, on a 1 GiB virtual accelerator: a 6-block DiT (the
// tiny t2v's blocks repeated with other values) in the shipped t2v vae_cpu workflow, up to its
// Sample. The latents are bit-identical, Sample holds at most two blocks at a time (its device peak is lower by at
// least three blocks' bytes), every block visits once per DiT call, and the plan agrees with the
// run (bytes moved, peaks within 10 %).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "device/block_packing.h"
#include "device/device_manager.h"
#include "graph/executor.h"
#include "graph/workflow_json.h"
#include "io/safetensors.h"
#include "models/dit/wan_dit.h"
#include "plan/activation_estimates.h"
#include "plan/auto_placement.h"
#include "plan/memory_plan.h"
#include "plan/plan_context.h"
#include "test_util.h"
#include "nodes/wan_nodes.h"

namespace wan::plan {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kBlocks = 6;

struct ModelsDir {
  fs::path root;
  int64_t block_bytes = 0;  // one block's weights (all blocks have the same shapes)
  ModelsDir() : root(fs::temp_directory_path() / ("wan_stream_" + std::to_string(::getpid()))) {
    fs::remove_all(root);
    fs::create_directories(root / "diffusion_models");
    const fs::path data = wan::testing::data_path("models");
    for (const char* folder : {"vae", "text_encoders", "tokenizers"})
      fs::create_directory_symlink(data / folder, root / folder);
    const auto tiny = io::load_safetensors((data / "diffusion_models" / "dit_t2v_tiny.safetensors").string());
    io::TensorMap tensors;
    for (const auto& [key, value] : tiny) {
      if (key.rfind("blocks.", 0) != 0) {
        tensors[key] = value;
        continue;
      }
      // blocks.<i>.rest -> blocks.<i + 2k>.rest, scaled so that every block differs.
      const auto dot = key.find('.', 7);
      const int i = std::stoi(key.substr(7, dot - 7));
      for (int k = 0; 2 * k + i < kBlocks; ++k) {
        tensors["blocks." + std::to_string(2 * k + i) + key.substr(dot)] = value * (1.0 - 0.1 * k);
        if (2 * k + i == 0) block_bytes += value.numel() * value.element_size();
      }
    }
    io::save_safetensors((root / "diffusion_models" / "dit_six_blocks.safetensors").string(), tensors);
    std::ifstream config(data / "diffusion_models" / "dit_t2v_tiny_config.json");
    auto json_config = json::parse(config);
    json_config["num_layers"] = kBlocks;
    std::ofstream(root / "diffusion_models" / "dit_six_blocks_config.json") << json_config.dump();
  }
  ~ModelsDir() { fs::remove_all(root); }
};

json prompt(const std::string& dit_placement, const std::string& t5_placement,
            int64_t side = 64, int64_t frames = 9, int64_t steps = 1, int64_t resident = 0) {
  const fs::path file = fs::path(WAN_TEST_DATA_DIR).parent_path().parent_path() / "workflows" /
                        "t2v" / "vae_cpu.json";
  const auto& registry = wan::nodes::wan_node_registry();
  json p = graph::to_api_prompt(graph::read_json_file(file), registry);
  for (const std::string& assignment : std::vector<std::string>{
           "LoadT5.model_name=t5_tiny_encoder.pth", "LoadT5.tokenizer=wan_tiny",
        "LoadVAE.model_name=vae_tiny.pth", "LoadDiT.model_name=dit_six_blocks.safetensors",
        "LoadDiT.placement=" + dit_placement, "Sample.width=" + std::to_string(side),
        "Sample.height=" + std::to_string(side), "Sample.frames=" + std::to_string(frames),
        "Sample.steps=" + std::to_string(steps), "LoadT5.placement=" + t5_placement,
        "LoadDiT.resident_blocks=" + std::to_string(resident)})
    graph::apply_override(p, assignment, registry);
  // Only what Sample needs, and its latent saved: decoding would add time, not coverage.
  json trimmed = json::object();
  for (const char* id : {"1", "2", "4", "5", "6"}) trimmed[id] = p.at(id);
  trimmed["11"] = {{"class_type", "SaveTensor"},
                   {"inputs", {{"tensor", json::array({"6", 0})}, {"filename_prefix", "latent"}}}};
  return trimmed;
}

// Planning `models` for the CPU as a 1 GiB card with no reserve.
PlanOptions one_gib_plan(const ModelsDir& models) {
  PlanOptions options;
  options.models_dir = models.root;
  options.device.device = "cpu";
  options.device.reserve = 0;
  options.device.vram = int64_t{1} << 30;
  return options;
}

struct Run {
  json ledger;
  at::Tensor latent;
  PlanResult plan;
  const json* sample = nullptr;
  size_t sample_index = 0;
};

Run run(const ModelsDir& models, const std::string& dit_placement,
        const std::string& t5_placement = "offload", int64_t side = 64, int64_t frames = 9,
        int64_t steps = 1, int64_t resident = 0) {
  PlanOptions options = one_gib_plan(models);
  Run r;
  r.plan = plan_prompt(prompt(dit_placement, t5_placement, side, frames, steps, resident),
                       wan::nodes::wan_node_registry(), options);
  device::DeviceManager devices(options.device);
  graph::Executor executor(wan::nodes::wan_node_registry());
  graph::RunContext context;
  context.models_dir = models.root;
  context.output_dir = models.root / ("output_" + dit_placement + "_" + t5_placement + "_" +
                                      std::to_string(resident));
  fs::create_directories(context.output_dir);
  context.device_manager = &devices;
  context.prompt = prompt(dit_placement, t5_placement, side, frames, steps, resident);
  executor.run(context.prompt, context);
  r.latent = (*executor.outputs("6"))[0].as_tensor().clone();
  r.ledger = devices.ledger().to_json();
  return r;
}

const json& node_of(const json& ledger, const std::string& class_type) {
  for (const auto& node : ledger["nodes"])
    if (node["class_type"] == class_type) return node;
  throw std::runtime_error("no " + class_type + " in the ledger");
}

// A sequence longer than a block's token run (704x704x9: 5808 tokens, runs of 4096): the
// chunked per-token work is planned within 10 % of what the run measures, with one step and
// with three (the solver's history and its update between DiT calls hold latents then; six
// steps measured the same peak as three).
TEST(StreamPlacement, LongSequencesInTokenRunsArePlannedWithinTenPercent) {
  ModelsDir models;
  for (const int64_t steps : {1, 3}) {
    const auto streamed = run(models, "stream", "offload", 704, 9, steps);
    const auto& sample = node_of(streamed.ledger, "Sample");
    const int64_t measured = sample["bytes_peak"]["vgpu"].get<int64_t>();
    for (const auto& node : streamed.plan.nodes) {
      if (node.class_type != "Sample") continue;
      std::printf("Sample at 5808 tokens, %lld steps: vgpu peak planned %lld, measured %lld (%+.1f %%)\n",
                  static_cast<long long>(steps), static_cast<long long>(node.device_peak),
                  static_cast<long long>(measured),
                  100.0 * (static_cast<double>(node.device_peak) - measured) / measured);
      EXPECT_NEAR(static_cast<double>(node.device_peak), static_cast<double>(measured),
                  0.10 * measured);
    }
  }
}

// The T5 streams its encoder blocks the same way: the same embeddings (hence latent) as `gpu`,
// each block in and out once per EncodePrompt, and the plan's transfers equal to the run's.
TEST(StreamPlacement, T5BlocksVisitOneAtATimeWithTheSameOutputAsGpu) {
  ModelsDir models;
  const auto gpu = run(models, "gpu", "gpu");
  const auto stream = run(models, "gpu", "stream");
  EXPECT_TRUE(at::equal(stream.latent, gpu.latent))
      << "max abs " << (stream.latent - gpu.latent).abs().max().item<double>();
  const int64_t t5_bytes = stream.ledger["models"]["t5"]["bytes"].get<int64_t>();
  std::vector<const json*> encodes;
  for (const auto& node : stream.ledger["nodes"])
    if (node["class_type"] == "EncodePrompt") encodes.push_back(&node);
  ASSERT_EQ(encodes.size(), 2u);
  // Nothing of the T5 stays on the device after either EncodePrompt, and every byte moved in
  // (resident part once, each block once) moved out again.
  for (const json* node : encodes) {
    const int64_t in = (*node)["transfers"]["bytes_in"].get<int64_t>();
    EXPECT_EQ(in, (*node)["transfers"]["bytes_out"].get<int64_t>());
    EXPECT_EQ(in, t5_bytes);
  }
  // gpu keeps the T5 on the device from LoadT5 on; stream leaves none of it there.
  EXPECT_EQ(node_of(stream.ledger, "EncodePrompt")["bytes_after"]["vgpu"].get<int64_t>(),
            node_of(gpu.ledger, "EncodePrompt")["bytes_after"]["vgpu"].get<int64_t>() - t5_bytes);
  size_t i = 0;
  for (const auto& node : stream.plan.nodes) {
    if (node.class_type != "EncodePrompt") continue;
    EXPECT_EQ(node.bytes_in, (*encodes.at(i++))["transfers"]["bytes_in"].get<int64_t>());
  }
  EXPECT_EQ(i, 2u);
}

TEST(StreamPlacement, DitBlocksVisitOneAtATimeWithTheSameLatentAsGpu) {
  ModelsDir models;
  const auto gpu = run(models, "gpu");
  const auto stream = run(models, "stream");
  ASSERT_EQ(gpu.ledger["nodes"].size(), 6u);  // the five nodes Sample needs and SaveTensor
  EXPECT_TRUE(at::equal(stream.latent, gpu.latent))
      << "max abs " << (stream.latent - gpu.latent).abs().max().item<double>();

  const auto& gpu_sample = node_of(gpu.ledger, "Sample");
  const auto& stream_sample = node_of(stream.ledger, "Sample");
  const int64_t gpu_peak = gpu_sample["bytes_peak"]["vgpu"].get<int64_t>();
  const int64_t stream_peak = stream_sample["bytes_peak"]["vgpu"].get<int64_t>();
  std::printf("Sample vgpu peak: gpu %lld, stream %lld (one block %lld bytes)\n",
              static_cast<long long>(gpu_peak), static_cast<long long>(stream_peak),
              static_cast<long long>(models.block_bytes));
  // gpu holds all six blocks while computing; stream the visited one and the next.
  EXPECT_GE(gpu_peak - stream_peak, (kBlocks - 3) * models.block_bytes);
  // One step with guidance: two DiT calls, each bringing every block in once, then out.
  const int64_t resident = stream.ledger["models"]["dit"]["bytes"].get<int64_t>() - kBlocks * models.block_bytes;
  EXPECT_EQ(stream_sample["transfers"]["bytes_in"].get<int64_t>(), resident + 2 * kBlocks * models.block_bytes);
  EXPECT_EQ(stream_sample["transfers"]["bytes_out"].get<int64_t>(), resident + 2 * kBlocks * models.block_bytes);
  EXPECT_EQ(stream_sample["bytes_after"]["vgpu"].get<int64_t>(), gpu_sample["bytes_after"]["vgpu"].get<int64_t>() -
                                                                     gpu.ledger["models"]["dit"]["bytes"].get<int64_t>());

  // The plan: the same transfers, and Sample's peak within 10 % of the run's.
  for (const auto& node : stream.plan.nodes) {
    if (node.class_type != "Sample") continue;
    EXPECT_EQ(node.bytes_in, stream_sample["transfers"]["bytes_in"].get<int64_t>());
    std::printf("Sample vgpu peak planned %lld, measured %lld\n", static_cast<long long>(node.device_peak),
                static_cast<long long>(stream_peak));
    EXPECT_NEAR(static_cast<double>(node.device_peak), static_cast<double>(stream_peak), 0.10 * stream_peak);
  }
}

// resident_blocks 2 of 6: the first two blocks move in with the lease and stay for both DiT
// calls, the other four visit once per call. The latent is still bit-identical to gpu's, and the
// plan moves the same bytes and peaks within 10 % of the run.
TEST(StreamPlacement, ResidentBlocksStayInForTheLeaseWithTheSameLatentAsGpu) {
  ModelsDir models;
  const auto gpu = run(models, "gpu");
  const auto all_streamed = run(models, "stream");
  const auto resident = run(models, "stream", "offload", 64, 9, 1, /*resident=*/2);
  EXPECT_TRUE(at::equal(resident.latent, gpu.latent))
      << "max abs " << (resident.latent - gpu.latent).abs().max().item<double>();

  const auto& sample = node_of(resident.ledger, "Sample");
  const int64_t outside = resident.ledger["models"]["dit"]["bytes"].get<int64_t>() -
                          kBlocks * models.block_bytes;
  // In with the lease: the parts outside the blocks and blocks 0 and 1; then blocks 2..5 per call.
  const int64_t moved = outside + 2 * models.block_bytes + 2 * (kBlocks - 2) * models.block_bytes;
  EXPECT_EQ(sample["transfers"]["bytes_in"].get<int64_t>(), moved);
  EXPECT_EQ(sample["transfers"]["bytes_out"].get<int64_t>(), moved);
  // Two blocks held for the lease instead of visiting: the peak grows by at most those two.
  const int64_t streamed_peak =
      node_of(all_streamed.ledger, "Sample")["bytes_peak"]["vgpu"].get<int64_t>();
  const int64_t resident_peak = sample["bytes_peak"]["vgpu"].get<int64_t>();
  EXPECT_GT(resident_peak, streamed_peak);
  EXPECT_LE(resident_peak, streamed_peak + 2 * models.block_bytes);

  for (const auto& node : resident.plan.nodes) {
    if (node.class_type != "Sample") continue;
    EXPECT_EQ(node.bytes_in, moved);
    EXPECT_NEAR(static_cast<double>(node.device_peak), static_cast<double>(resident_peak),
                0.10 * resident_peak);
  }
}

// resident_blocks -1 (the planner's choice) on a card sized to hold the streamed Sample plus
// three blocks: auto keeps the most blocks that fit (of its candidates ... 4, 2, 1, 0: 2), and
// says it would not fit with 4.
TEST(StreamPlacement, AutoResidentBlocksAreTheMostThatFit) {
  ModelsDir models;
  const auto& registry = wan::nodes::wan_node_registry();
  PlanOptions options = one_gib_plan(models);
  const PlanResult streamed = plan_prompt(prompt("stream", "offload"), registry, options);
  ASSERT_TRUE(streamed.fits);
  options.device.vram = streamed.device_peak + 3 * models.block_bytes;
  const auto resolved =
      resolve_auto_placement(prompt("stream", "offload", 64, 9, 1, -1), registry, options);
  ASSERT_TRUE(resolved.fits) << resolved.summary;
  bool found = false;
  for (const auto& choice : resolved.choices) {
    if (choice.input != "resident_blocks") continue;
    found = true;
    EXPECT_EQ(choice.value, "2") << resolved.summary;
    EXPECT_NE(choice.why.find("4 would run out of memory"), std::string::npos) << choice.why;
  }
  EXPECT_TRUE(found) << resolved.summary;
  EXPECT_EQ(resolved.prompt["1"]["inputs"]["resident_blocks"], 2) << resolved.prompt.dump();
  // Not streaming: the count is unused and set to 0.
  const auto gpu = resolve_auto_placement(prompt("gpu", "offload", 64, 9, 1, -1), registry, options);
  for (const auto& choice : gpu.choices) {
    if (choice.input == "resident_blocks") {
      EXPECT_EQ(choice.value, "0") << gpu.summary;
    }
  }
}

// Planned for a CUDA card (PlanOptions::page_locked_streaming), `stream` page-locks what
// visits the device, block by block in one buffer each, at its first lease: Sample and every
// node after it hold those bytes more in CPU memory (the tiny DiT's tensors are views of its
// file, so no original is freed); the resident blocks and the other placements lock nothing.
// The same prompt on the virtual accelerator, which does not page-lock, plans none of it.
TEST(StreamPlacement, PlannedForCudaTheStreamedBlocksArePageLockedFromTheFirstLease) {
  ModelsDir models;
  const auto& registry = wan::nodes::wan_node_registry();
  PlanOptions options = one_gib_plan(models);
  const auto file =
      io::load_safetensors((models.root / "diffusion_models" / "dit_six_blocks.safetensors").string());
  int64_t locked = 0;  // blocks 2..5, each tensor at a 64-byte boundary of its block's buffer
  for (const auto& [key, value] : file) {
    const std::string block = block_of(key);
    if (!block.empty() && std::stoi(block.substr(7)) >= 2)
      locked += device::packed_size(value.numel() * value.element_size());
  }
  ASSERT_GT(locked, 4 * models.block_bytes - 1);

  const PlanResult pageable = plan_prompt(prompt("stream", "offload", 64, 9, 1, 2), registry, options);
  options.page_locked_streaming = true;
  const PlanResult cuda = plan_prompt(prompt("stream", "offload", 64, 9, 1, 2), registry, options);
  const PlanResult gpu = plan_prompt(prompt("gpu", "offload", 64, 9, 1, 2), registry, options);
  options.page_locked_streaming = false;
  const PlanResult gpu_pageable = plan_prompt(prompt("gpu", "offload", 64, 9, 1, 2), registry, options);
  ASSERT_EQ(cuda.nodes.size(), pageable.nodes.size());
  bool after_first_lease = false;
  int64_t peak = 0;
  for (size_t i = 0; i < cuda.nodes.size(); ++i) {
    SCOPED_TRACE(cuda.nodes[i].class_type);
    after_first_lease = after_first_lease || cuda.nodes[i].class_type == "Sample";
    const int64_t extra = after_first_lease ? locked : 0;
    EXPECT_EQ(cuda.nodes[i].cpu_after, pageable.nodes[i].cpu_after + extra);
    EXPECT_EQ(cuda.nodes[i].cpu_peak, pageable.nodes[i].cpu_peak + extra);
    EXPECT_EQ(cuda.nodes[i].device_peak, pageable.nodes[i].device_peak);
    EXPECT_EQ(gpu.nodes[i].cpu_after, gpu_pageable.nodes[i].cpu_after);
    peak = std::max(peak, pageable.nodes[i].cpu_peak + extra);
  }
  EXPECT_TRUE(after_first_lease);
  EXPECT_EQ(cuda.cpu_peak, peak);

  // --page-lock: whole blocks in order while the total stays within it (two and a half blocks:
  // two), and 0 locks nothing.
  const int64_t one_block = locked / 4;
  for (const auto& [limit, blocks] : std::vector<std::pair<int64_t, int64_t>>{
           {2 * one_block + one_block / 2, 2}, {0, 0}, {locked, 4}}) {
    options.page_locked_streaming = true;
    options.device.page_lock = limit;
    const PlanResult limited = plan_prompt(prompt("stream", "offload", 64, 9, 1, 2), registry, options);
    EXPECT_EQ(limited.nodes.back().cpu_after, pageable.nodes.back().cpu_after + blocks * one_block)
        << "--page-lock " << limit;
  }
}

// The CPU as a 1 GiB card with no reserve.
device::ComputeDeviceOptions one_gib_virtual_accelerator() {
  device::ComputeDeviceOptions options;
  options.device = "cpu";
  options.reserve = 0;
  options.vram = int64_t{1} << 30;
  return options;
}

// A planner-chosen input (resident_blocks -1, vace_activations auto) reaching LoadDiT in a run
// that was not planned is refused, naming the input, before anything loads.
TEST(StreamPlacement, ALoadDitRunWithoutAPlanRefusesThePlannersChoices) {
  ModelsDir models;
  const auto& registry = wan::nodes::wan_node_registry();
  for (const std::string& set : {std::string("LoadDiT.resident_blocks=-1"),
                                 std::string("LoadDiT.vace_activations=auto")}) {
    SCOPED_TRACE(set);
    json p = prompt("stream", "offload");
    graph::apply_override(p, set, registry);
    device::DeviceManager devices(one_gib_virtual_accelerator());
    graph::Executor executor(registry);
    graph::RunContext context;
    context.models_dir = models.root;
    context.output_dir = models.root / "output_unplanned";
    context.device_manager = &devices;
    context.prompt = p;
    try {
      executor.run(context.prompt, context);
      ADD_FAILURE() << "the run accepted " << set;
    } catch (const std::exception& e) {
      const std::string input = set.substr(set.find('.') + 1, set.find('=') - set.find('.') - 1);
      EXPECT_NE(std::string(e.what()).find("input '" + input + "'"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("planner"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(devices.models().empty());
    EXPECT_FALSE(fs::exists(context.output_dir));
  }
}

// VACE interleaves its blocks with the main ones (VACE block k after main block vace_layers[k]):
// the visitor brings each in ahead of the next across the two lists, and the float32 output
// equals the official golden as with `gpu`.
TEST(StreamPlacement, VaceBlocksBetweenMainBlocksGiveTheGpuOutput) {
  const auto& g = wan::testing::golden("dit_vace");
  models::DitExtras extras;
  extras.vace_context = {g.at("single.vace_context.0")};
  extras.vace_context_scale = 0.75;
  const auto weights = wan::testing::tiny_path("weights/dit_vace_tiny.safetensors");
  at::Tensor outputs[2];
  int64_t peaks[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    device::DeviceManager devices(one_gib_virtual_accelerator());
    auto dit = models::load_wan_dit(weights, at::kFloat, at::kFloat);
    auto model = devices.adopt(dit.ptr(), i == 0 ? device::Placement::kGpu : device::Placement::kStream, "dit");
    devices.ledger().begin_stage("1", "Test");
    {
      auto lease = devices.lease(model, "Test (node 1)");
      models::DitExtras on_device = extras;
      on_device.vace_context = {lease.to_compute(extras.vace_context[0])};
      const auto out = dit->forward({lease.to_compute(g.at("single.x.0"))}, g.at("single.t"),
                                    {lease.to_compute(g.at("single.context.0"))}, 64, on_device);
      outputs[i] = lease.to_cpu(out.at(0));
    }
    devices.ledger().end_stage();
    peaks[i] = devices.ledger().to_json()["nodes"][0]["bytes_peak"]["vgpu"].get<int64_t>();
  }
  EXPECT_TRUE(at::equal(outputs[1], outputs[0]))
      << "max abs " << (outputs[1] - outputs[0]).abs().max().item<double>();
  EXPECT_ALLCLOSE(outputs[1], g.at("single.out.0"), 1e-5);
  std::printf("VACE tiny: vgpu peak gpu %lld, stream %lld\n", static_cast<long long>(peaks[0]),
              static_cast<long long>(peaks[1]));
  EXPECT_LT(peaks[1], peaks[0]);
}

// The tiny VACE DiT (4 main blocks, VACE blocks at 0 and 3) made into one with VACE blocks at 0,
// 1, 2 and 3 (blocks 2 and 3 copies of block 1, scaled), in a temporary folder.
struct FourVaceBlockDit {
  fs::path dir = fs::temp_directory_path() / ("wan_vace_" + std::to_string(::getpid()));
  fs::path tiny = fs::path(wan::testing::data_path("models")) / "diffusion_models";
  std::string file = (dir / "dit_vace_four.safetensors").string();
  FourVaceBlockDit() {
    fs::remove_all(dir);
    fs::create_directories(dir);
    auto tensors = io::load_safetensors((tiny / "dit_vace_tiny.safetensors").string());
    const std::string source = "vace_blocks.1.";
    io::TensorMap extra;
    for (const auto& [key, value] : tensors)
      if (key.rfind(source, 0) == 0)
        for (int k : {2, 3})
          extra["vace_blocks." + std::to_string(k) + "." + key.substr(source.size())] =
              value * (1.0 - 0.1 * k);
    tensors.insert(extra.begin(), extra.end());
    io::save_safetensors(file, tensors);
    std::ifstream config_in(tiny / "dit_vace_tiny_config.json");
    auto config = json::parse(config_in);
    config["vace_layers"] = {0, 1, 2, 3};
    std::ofstream(dir / "dit_vace_four_config.json") << config.dump();
  }
  ~FourVaceBlockDit() { fs::remove_all(dir); }
};

// One VACE DiT forward at 5120 tokens (16 x 5 x 64 x 64 latents) on a 1 GiB virtual
// accelerator: the output, the device bytes it added at its peak, and the ledger's moves.
struct VaceForward {
  at::Tensor out;
  int64_t activations = 0, bytes_in = 0, bytes_out = 0;
};
constexpr int64_t kVaceFrames = 5, kVaceSide = 64;
constexpr int64_t kVaceTokens = kVaceFrames * (kVaceSide / 2) * (kVaceSide / 2);  // 5120

VaceForward vace_forward(const std::string& file, device::Placement placement, bool park) {
  const auto& g = wan::testing::golden("dit_vace");
  at::manual_seed(7);
  const auto x = at::randn({16, kVaceFrames, kVaceSide, kVaceSide});
  const auto vace_context = at::randn({96, kVaceFrames, kVaceSide, kVaceSide});
  device::DeviceManager devices(one_gib_virtual_accelerator());
  auto dit = models::load_wan_dit(file, at::kFloat, at::kFloat);
  dit->set_park_vace(park);
  auto model = devices.adopt(dit.ptr(), placement, "dit");
  VaceForward r;
  devices.ledger().begin_stage("1", "Test");
  {
    auto lease = devices.lease(model, "Test (node 1)");
    models::DitExtras extras;
    extras.vace_context = {lease.to_compute(vace_context)};
    extras.vace_context_scale = 0.75;
    const auto input = lease.to_compute(x);
    const auto context = lease.to_compute(g.at("single.context.0"));
    const int64_t before = devices.compute().bytes_in_use();
    devices.reset_peaks();
    r.out = lease.to_cpu(
        dit->forward({input}, g.at("single.t"), {context}, kVaceTokens, extras).at(0));
    r.activations = devices.compute().bytes_peak() - before;
  }
  devices.ledger().end_stage();
  const json transfers = devices.ledger().to_json()["nodes"][0]["transfers"];
  r.bytes_in = transfers["bytes_in"].get<int64_t>();
  r.bytes_out = transfers["bytes_out"].get<int64_t>();
  return r;
}

// VACE block k computes right after main block vace_layers[k], so a hint lives only until it is
// added: the activations of a long VACE forward do not grow with the number of VACE blocks. The
// tiny VACE DiT (VACE blocks at 0 and 3) against the four-block one, at 5120 tokens: holding
// every hint through the main blocks, as the official code does, would add two hints
// (2 x 1.25 MiB); the test allows less than one.
TEST(StreamPlacement, VaceActivationsDoNotGrowWithItsBlockCount) {
  FourVaceBlockDit four;
  const VaceForward two_blocks = vace_forward(
      (four.tiny / "dit_vace_tiny.safetensors").string(), device::Placement::kGpu, false);
  const VaceForward four_blocks = vace_forward(four.file, device::Placement::kGpu, false);
  const int64_t hint = kVaceTokens * 64 * 4;
  std::printf("VACE tiny at %lld tokens: activations with 2 VACE blocks %lld, with 4 %lld (one hint %lld)\n",
              static_cast<long long>(kVaceTokens), static_cast<long long>(two_blocks.activations),
              static_cast<long long>(four_blocks.activations), static_cast<long long>(hint));
  EXPECT_FALSE(at::equal(two_blocks.out, four_blocks.out));  // the extra VACE blocks took part
  EXPECT_LT(four_blocks.activations, two_blocks.activations + hint);
}

// vace_activations cpu: the residual stream waits in CPU memory while a VACE block computes, the
// chain while main blocks do, the first hint through main block 0. The same output as keeping
// them on the device (bit-identical, with `gpu` and with `stream` weights), the device holding
// two float32 streams less at the peak (the chain and the first hint beside the residual
// stream), and the moves the planner counts: two streams each way per VACE block.
TEST(StreamPlacement, ParkedVaceActivationsGiveTheSameOutputWithTwoStreamsLessOnTheDevice) {
  FourVaceBlockDit four;
  const VaceForward kept = vace_forward(four.file, device::Placement::kGpu, false);
  const VaceForward parked = vace_forward(four.file, device::Placement::kGpu, true);
  const VaceForward streamed = vace_forward(four.file, device::Placement::kStream, true);
  const int64_t stream = kVaceTokens * 64 * 4;
  std::printf("VACE tiny at %lld tokens: activations kept %lld, parked %lld (one stream %lld); "
              "parked moved %lld in, %lld out\n",
              static_cast<long long>(kVaceTokens), static_cast<long long>(kept.activations),
              static_cast<long long>(parked.activations), static_cast<long long>(stream),
              static_cast<long long>(parked.bytes_in), static_cast<long long>(parked.bytes_out));
  EXPECT_TRUE(at::equal(parked.out, kept.out))
      << "max abs " << (parked.out - kept.out).abs().max().item<double>();
  EXPECT_TRUE(at::equal(streamed.out, kept.out));
  EXPECT_EQ(kept.bytes_in, 0);
  EXPECT_EQ(kept.activations - parked.activations, 2 * stream);

  ModelPlan plan;
  plan.kind = ModelKind::kDit;
  plan.dit = models::load_wan_dit(four.file, at::kFloat, at::kFloat)->config();
  plan.park_vace = true;
  pipeline::VideoShape shape;
  shape.width = shape.height = kVaceSide * 8;
  shape.frames = (kVaceFrames - 1) * 4 + 1;
  ASSERT_EQ(dit_tokens(plan.dit, shape), kVaceTokens);
  EXPECT_EQ(parked.bytes_in, vace_parked_bytes(plan, shape));
  EXPECT_EQ(parked.bytes_out, vace_parked_bytes(plan, shape));
  EXPECT_EQ(parked.bytes_in, 2 * 4 * stream);
  // The planner's activations differ by what the run measured.
  plan.compute_bytes = 4;
  ModelPlan kept_plan = plan;
  kept_plan.park_vace = false;
  EXPECT_EQ(dit_activations(kept_plan, shape, 1) - dit_activations(plan, shape, 1),
            kept.activations - parked.activations);
}

}  // namespace
}  // namespace wan::plan
