// Memory planning: what a run of an API prompt will hold on the compute device and in CPU memory,
// node by node, and the first out-of-memory it will hit, computed from file headers (or the
// official checkpoints' shapes) without loading weights or computing anything heavy.
//
//   PlanOptions options;
//   options.models_dir = "models";
//   options.device.vram = device::parse_size("11.49GiB");
//   auto plan = plan_prompt(api_prompt, nodes::wan_node_registry(), options);
//   if (!plan.fits) std::fprintf(stderr, "%s\n", plan.first_oom_message.c_str());
//
// The nodes run in the executor's order (graph::execution_order), and each declares what it
// holds and moves through its own plan() (graph::Node, plan/plan_context.h): the planner has no
// node semantics of its own and refuses a node without a plan. Activation peaks are estimates
// from shapes (plan/activation_estimates.h); docs/memory_plan.md gives each formula's basis.
#pragma once
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "device/compute_device.h"
#include "graph/node_registry.h"
#include "plan/activation_estimates.h"  // vae_decode_activation_bytes, for the tests and docs

namespace wan::plan {

struct PlanOptions {
  ModelFolders models_dir;
  // The run's folders, for validating the prompt as the executor does: relative input file
  // names are read from input_dir; output prefixes are checked against output_dir (empty: not
  // checked, a plan writes nothing).
  std::filesystem::path input_dir, output_dir;
  // "" (read the model files' headers), or the official checkpoints of a pipeline: "t2v-1.3B",
  // "t2v-14B", "i2v-14B", "flf2v-14B", "vace-1.3B", "vace-14B".
  std::string preset;
  device::ComputeDeviceOptions device;
  // Whether `stream` page-locks its streamed blocks in CPU memory (counted from the first lease
  // on: docs/memory.md). Unset: as the planned device does, which is CUDA only; a table of what
  // fits CUDA cards sets it to plan them on the virtual accelerator.
  std::optional<bool> page_locked_streaming;
};

// One node of the predicted timeline (the same quantities as the memory ledger's stages).
struct PlannedNode {
  std::string node_id, class_type;
  int64_t device_after = 0, device_peak = 0;  // compute device
  int64_t cpu_after = 0, cpu_peak = 0;        // CPU memory
  // Weights (and parked activations) moved onto / released from the device.
  int64_t bytes_in = 0, bytes_out = 0;
  std::string peak_part;                      // what the device peak consists of, in words
  bool ok = true;
  std::string error;
};

struct PlanResult {
  bool fits = true;
  std::string text;     // the timeline as a table, then the verdict
  nlohmann::json json;  // {"device", "capacity", "models", "nodes": [...], "peak", "fits", ...}
  std::string first_oom_message;  // empty when everything fits
  // Added: the timeline as data, and the run's peaks.
  std::vector<PlannedNode> nodes;
  std::string device_name;      // "vgpu", "cuda:0" or "cpu"
  int64_t capacity = -1;        // usable bytes; -1 when uncapped
  int64_t device_peak = 0;      // highest predicted compute-device bytes over the run
  std::string device_peak_node;  // "Sample (node 7)"
  int64_t cpu_peak = 0;
  int64_t transfer_bytes = 0;  // bytes moved onto the device over the run
  double cpu_work = 0;         // PlanContext::cpu_work: what the CPU-placed models compute
  // Weights per model name ("t5", "vae", "dit", "clip_vision"), as the device manager counts
  // them (parameters + buffers in the dtype the loader stores).
  std::vector<std::pair<std::string, int64_t>> model_bytes;
};

// Plans `api_prompt` (validated first: throws graph::InvalidPrompt like the executor).
PlanResult plan_prompt(const nlohmann::json& api_prompt, const graph::NodeRegistry& registry,
                       const PlanOptions& options);

}  // namespace wan::plan
