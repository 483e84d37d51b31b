// Memory planning: what a run of an API prompt will hold on the compute device and in CPU memory,
// node by node, and the first out-of-memory it will hit, computed from file headers (or the
// official checkpoints' shapes) without loading weights or computing anything heavy.
//
//   PlanOptions options;
//   options.models_dir = "models";
//   options.device.vram = device::parse_size("11.49GiB");
//   auto plan = plan_prompt(api_prompt, graph::NodeRegistry::global(), options);
//   if (!plan.fits) std::fprintf(stderr, "%s\n", plan.first_oom_message.c_str());
//
// The simulation follows the device manager's rules (docs/memory.md): `gpu` weights move in at
// load and stay, `offload` weights move in tensor by tensor for each node that computes with the
// model and out after it (their CPU copies stay held), `cpu` weights never reach the device.
// Activation peaks are estimates from shapes; docs/memory_plan.md gives each formula's basis.
#pragma once
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "device/compute_device.h"
#include "graph/node_registry.h"

namespace wan::plan {

struct PlanOptions {
  std::filesystem::path models_dir;
  // "" (read the model files' headers), or the official checkpoints of a pipeline: "t2v-1.3B",
  // "t2v-14B", "i2v-14B", "flf2v-14B", "vace-1.3B", "vace-14B".
  std::string preset;
  device::ComputeDeviceOptions device;
};

// One node of the predicted timeline (the same quantities as the memory ledger's stages).
struct PlannedNode {
  std::string node_id, class_type;
  int64_t device_after = 0, device_peak = 0;  // compute device
  int64_t cpu_after = 0, cpu_peak = 0;        // CPU memory
  int64_t bytes_in = 0, bytes_out = 0;        // weights moved onto / released from the device
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
  // Weights per model name ("t5", "vae", "dit", "clip_vision"), as the device manager counts
  // them (parameters + buffers in the dtype the loader stores).
  std::vector<std::pair<std::string, int64_t>> model_bytes;
};

// Plans `api_prompt` (validated first: throws graph::InvalidPrompt like the executor).
PlanResult plan_prompt(const nlohmann::json& api_prompt, const graph::NodeRegistry& registry,
                       const PlanOptions& options);

// Bytes of a VAE decode's activations for `latent_frames` latent frames of height x width video
// pixels with decoder width `base_channels` and `dtype_bytes`-byte activations (see
// docs/memory_plan.md for the calibration). Exposed for the documentation table and tests.
int64_t vae_decode_activation_bytes(int64_t latent_frames, int64_t height, int64_t width,
                                    int64_t base_channels, int64_t dtype_bytes);

}  // namespace wan::plan
