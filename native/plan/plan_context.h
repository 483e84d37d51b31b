// What a node sees of the memory planner: the simulated device and CPU, the planned values on its
// linked inputs, and the operations its execute() performs on memory (adopt a model, lease it to
// compute, hold an output). Each node declares its own memory behaviour with these in its
// plan() (graph::Node), next to its execute(), so the planner has no node semantics of its own.
//
//   bool plan(const graph::Values& in, plan::PlanContext& plan) const override {
//     auto& t5 = plan.model("t5");
//     if (!plan.lease(t5, plan::t5_activations(t5, tokens), "T5 activations")) return true;
//     plan::PlannedValue text;
//     text.device_bytes = embeddings;
//     plan.hold(text);
//     plan.set_output(0, text);
//     return true;
//   }
//
// The rules are the device manager's (docs/memory.md): `gpu` weights move in at adoption and
// stay, `offload` weights move in for each lease and out after it (their CPU copies stay held),
// `stream` moves all but the blocks in for the lease and the blocks one at a time, `cpu` weights
// never reach the device.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/model_folders.h"
#include "device/placement.h"
#include "models/dit/wan_dit_config.h"
#include "models/vae/wan_vae.h"
#include "pipeline/video_shape.h"

namespace wan::plan {

struct PlannedNode;

enum class ModelKind { kT5, kVae, kDit, kClip };

// A loaded model as the planner counts it: its tensors in the dtype the loader keeps them in,
// and the sizes its activation estimates need.
struct ModelPlan {
  ModelKind kind;
  std::string name;  // "t5", "vae", "dit", "clip_vision" ("dit#2" for a second one)
  device::Placement placement = device::Placement::kOffload;
  std::vector<std::pair<std::string, int64_t>> tensors;  // in the order the manager moves them
  int64_t bytes = 0;
  // Bytes the weights hold in counted CPU memory once loaded: tensors read from a mapped file in
  // the dtype they are kept in stay views of the page cache (docs/memory.md "Not counted"); only
  // converted ones (fp8 -> bf16, fp32 -> bf16, ...) are allocations.
  int64_t cpu_bytes = 0;
  // Which of `tensors` are such allocations (same order; empty: none, unless
  // load_transient_bytes is -1, when all are).
  std::vector<bool> converted;
  // What loading holds beyond cpu_bytes for a moment: a dequantized fp8 weight's float32
  // temporaries (the largest such weight). -1: the whole model, read as a copy (formats whose
  // tensors are not views of the file).
  int64_t load_transient_bytes = -1;
  bool on_device = false;
  // T5
  int64_t t5_dim = 0, t5_dim_attn = 0, t5_ffn = 0, t5_heads = 0, text_len = 512;
  std::string tokenizer;  // spiece.model (or its folder); empty: text_len tokens are assumed
  // VAE
  models::WanVaeConfig vae;
  int64_t act_bytes = 4;  // activation element size (VAE, CLIP: the weight dtype)
  // DiT
  models::WanDitConfig dit;
  int64_t compute_bytes = 2;
  // `stream`: the bytes of the blocks (which visit the device one at a time, the next brought
  // in ahead) in all, and of the largest one; the rest moves in for the lease like `offload`.
  int64_t block_bytes = 0, blocks = 0;
  // `stream`: the first `resident_blocks` of blocks.N move in with the lease (their bytes,
  // resident_bytes) instead of visiting; the largest of the others.
  int64_t resident_blocks = 0, resident_bytes = 0, largest_streamed_bytes = 0;
  // The largest weight a layer casts to the compute dtype for one call (kept in another dtype:
  // fp8 in a bf16 T5, an fp16 DiT computing in bf16), alive while that layer computes.
  int64_t upcast_bytes = 0;
  // VACE: the stream not computing parks in CPU memory (LoadDiT's vace_activations cpu).
  bool park_vace = false;
  // `stream` on CUDA: the streamed blocks' CPU tensors were replaced by page-locked copies at
  // the first lease (the device manager's pin_streamed_blocks).
  bool page_locked = false;
  // CLIP
  int64_t clip_width = 1280, clip_mlp = 5120, clip_heads = 16, clip_layers = 31;
};

// What flows on a node's output, as far as memory is concerned.
struct PlannedValue {
  std::shared_ptr<ModelPlan> model;  // a loader's model
  int64_t device_bytes = 0;          // held on the compute device while cached
  int64_t cpu_bytes = 0;             // held in CPU memory while cached
  int64_t tokens = 0, dim = 0;       // text embeddings
  pipeline::VideoShape shape;        // conditioning, latents, frames
  // VACE conditioning: latent frames its reference images add in front of the video's, which
  // Sample denoises with them and trims from its output.
  int64_t reference_frames = 0;
};

class PlanContext {
 public:
  // `preset`: "" (model files are read) or a pipeline whose official shapes stand in for them.
  // `capacity`: usable device bytes, -1 when unbounded; `accelerator` false plans a CPU run.
  PlanContext(ModelFolders models_dir, std::string preset, bool accelerator,
              std::string device_name, int64_t capacity);

  // ---- what a node's plan() reads ----
  const std::string& preset() const { return preset_; }
  std::filesystem::path model_file(const std::string& folder, const std::string& name) const {
    return models_dir_.locate(folder, name);
  }
  // Where inputs named by file are read (LoadImage, WanLoadImageFrames); empty: as given.
  const std::filesystem::path& input_dir() const { return input_dir_; }
  const std::filesystem::path& output_dir() const { return output_dir_; }
  void set_input_folders(std::filesystem::path input_dir, std::filesystem::path output_dir) {
    input_dir_ = std::move(input_dir);
    output_dir_ = std::move(output_dir);
  }
  // What `stream` page-locks in CPU memory at a model's first lease, as the device manager does
  // on CUDA (so their copies overlap compute): held from then on, whole blocks in order while
  // the process's total stays within `limit` (0, the default: nothing, as off CUDA; -1: no limit).
  void set_page_lock_limit(int64_t limit) { page_lock_limit_ = limit; }
  bool accelerator() const { return accelerator_; }
  const std::string& device_name() const { return device_name_; }
  const std::string& node_label() const { return label_; }  // "Sample (node 7)"
  // The planned value on a linked input; nullptr when the input is not linked.
  const PlannedValue* input(const std::string& name) const;
  // The model on a linked model input (validation guarantees the link).
  ModelPlan& model(const std::string& name) const;
  // Whether `model` computes on the compute device (not `cpu`, and there is an accelerator).
  bool computes_on_device(const ModelPlan& model) const;

  // ---- what a node's plan() does ----
  // A loaded model under a unique name from `base`: read into CPU memory (its converted tensors,
  // and load_transient_bytes for a moment), moved in now when `placement` is gpu. Check
  // out_of_memory() after.
  std::shared_ptr<ModelPlan> adopt(ModelPlan model, const std::string& base,
                                   const std::string& placement);
  // Weights in (offload, stream), `activations` bytes while the model computes (with
  // `inputs_on_device` bytes of inputs moved over for it), weights out. `passes`: forward calls
  // in the lease (a streamed model's blocks visit once per call), each over `tokens` positions
  // (the CPU work of a model placed `cpu` is weights x tokens x passes). False on an
  // out-of-memory.
  bool lease(ModelPlan& model, int64_t activations, const std::string& what,
             int64_t inputs_on_device = 0, int64_t passes = 1, int64_t tokens = 1);
  // Activations a model computing on the device parks in CPU memory and takes back
  // (WanDitOptions::park_vace): `bytes_each_way` moved off the device and as many back onto it,
  // with up to `cpu_bytes` of them in CPU memory at once. Nothing when `model` computes on the
  // CPU.
  void park(const ModelPlan& model, int64_t bytes_each_way, int64_t cpu_bytes);
  // Counts `value`'s bytes as held from now on (until the run ends), and `transient_cpu` bytes
  // of CPU memory alive only while the node makes it.
  void hold(const PlannedValue& value, int64_t transient_cpu = 0);
  void set_output(size_t index, PlannedValue value);
  bool out_of_memory() const { return oom_.has_value(); }

  // ---- the planner's side (memory_plan.cpp) ----
  void begin_node(PlannedNode& node, const std::string& label,
                  const std::map<std::string, std::pair<std::string, int64_t>>& links,
                  size_t outputs);
  void end_node(const std::string& id);
  int64_t device_held() const { return dev_held_; }
  int64_t cpu_held() const { return cpu_held_; }
  int64_t device_peak() const { return dev_peak_; }
  int64_t cpu_peak() const { return cpu_peak_; }
  const std::string& peak_part() const { return peak_part_; }
  const std::optional<std::string>& oom() const { return oom_; }
  const std::vector<std::shared_ptr<ModelPlan>>& models() const { return models_; }
  int64_t capacity() const { return capacity_; }
  // Weight bytes x positions x calls computed on the CPU over the run: a proxy for the time the
  // CPU-placed models take (the DiT's 32760 tokens x 100 calls dwarf one T5 encode).
  double cpu_work() const { return cpu_work_; }

 private:
  void note(int64_t device_extra, int64_t cpu_extra, const std::string& what);
  void move_in(ModelPlan& model);
  void page_lock_streamed_blocks(ModelPlan& model);
  bool streams(const ModelPlan& model) const {
    return model.placement == device::Placement::kStream;
  }

  ModelFolders models_dir_;
  std::filesystem::path input_dir_, output_dir_;
  std::string preset_;
  bool accelerator_ = false;
  int64_t page_lock_limit_ = 0, page_locked_ = 0;
  std::string device_name_;
  int64_t capacity_ = -1;

  int64_t dev_held_ = 0, cpu_held_ = 0, dev_peak_ = 0, cpu_peak_ = 0;
  std::string peak_part_, label_;
  PlannedNode* current_ = nullptr;
  std::map<std::string, std::pair<std::string, int64_t>> links_;  // input -> node id, output
  std::vector<PlannedValue> node_outputs_;
  std::map<std::string, std::vector<PlannedValue>> outputs_;  // node id -> outputs
  std::vector<std::shared_ptr<ModelPlan>> models_;
  std::set<std::string> model_names_;
  std::optional<std::string> oom_;
  double cpu_work_ = 0;
};

// "blocks.3.ffn.0.weight" -> "blocks.3" (also "vace_blocks.N"); empty for the tensors outside the
// blocks, which `stream` moves in with the lease.
std::string block_of(const std::string& key);

// Counts model's blocks (blocks.N, vace_blocks.N) from its tensors and keeps the first `count`
// of blocks.N resident under `stream` (as the device manager does with adopt's
// resident_blocks): sets block_bytes, blocks, resident_blocks, resident_bytes and
// largest_streamed_bytes.
void keep_blocks_resident(ModelPlan& model, int64_t count);
// Whether `key` is the tensor of a block that visits the device one at a time under `stream`.
bool visits_with_block(const ModelPlan& model, const std::string& key);

}  // namespace wan::plan
