// Nodes, the context they run in, and the registry that maps class_type names to them.
//
//   class LoadVae : public Node {
//    public:
//     static NodeSchema schema();
//     Values execute(const Values& in, RunContext& run) override;
//     bool plan(const Values& in, plan::PlanContext& plan) const override;
//   };
//   registry.add<LoadVae>();  // in nodes/wan_nodes.cpp's register_wan_nodes
#pragma once
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "graph/node_schema.h"
#include "graph/value.h"

namespace wan::device {
class DeviceManager;  // placement and memory budget; defined by native/device/
}  // namespace wan::device
namespace wan::plan {
class PlanContext;  // the memory planner's view of a run; defined by native/plan/plan_context.h
}  // namespace wan::plan

namespace wan::graph {

class NodeRegistry;
struct RunContext;
// One node's execution (graph/executor.h); sets the running node on the context.
Values run_node(const NodeRegistry& registry, const std::string& node_id,
                const std::string& class_type, Values in, RunContext& run);

// What a node's validate() sees of the graph before anything runs: its literal inputs (converted
// per schema, optional defaults filled) and, for each linked input, the node on the other end.
class NodeView {
 public:
  NodeView(std::string id, std::string class_type, Values literals)
      : id_(std::move(id)), class_type_(std::move(class_type)), literals_(std::move(literals)) {}
  const std::string& id() const { return id_; }
  const std::string& class_type() const { return class_type_; }
  const Values& literals() const { return literals_; }
  // The node linked to `input` and the output index it uses; {nullptr, 0} when not linked.
  std::pair<const NodeView*, int64_t> upstream(const std::string& input) const;
  void set_upstream(const std::string& input, const NodeView* node, int64_t output_index);

 private:
  std::string id_, class_type_;
  Values literals_;
  std::map<std::string, std::pair<const NodeView*, int64_t>> upstream_;
};

// Problems a validate() finds; each becomes one "custom_validation_failed" error on the node.
class ValidationIssues {
 public:
  void add(std::string input_name, std::string message) {
    issues_.emplace_back(std::move(input_name), std::move(message));
  }
  const std::vector<std::pair<std::string, std::string>>& all() const { return issues_; }

 private:
  std::vector<std::pair<std::string, std::string>> issues_;
};

struct ProgressEvent {
  enum class Kind { kNodeStarted, kNodeCached, kNodeFinished, kStep };
  Kind kind;
  std::string node_id, class_type;
  int64_t step = 0, steps = 0;  // kStep: `step` of `steps` done (1-based)
  double wall_ms = 0;           // kNodeFinished: time the node took
};

// Everything a running node may use besides its inputs. Filled by the runner (or the ComfyUI
// shim), handed to every node by the executor.
struct RunContext {
  ModelFolders models_dir;  // ComfyUI layout: diffusion_models/, vae/, ... (and a host's more)
  std::filesystem::path output_dir;
  std::filesystem::path input_dir;
  std::function<void(const ProgressEvent&)> on_progress;  // may be empty
  const std::atomic<bool>* cancel_flag = nullptr;         // set from a signal handler or the UI
  device::DeviceManager* device_manager = nullptr;        // filled by the runner
  std::filesystem::path temp_dir;  // PreviewImage's files (ComfyUI's temp folder)
  nlohmann::json prompt;    // the API prompt being run, for output metadata
  nlohmann::json workflow;  // the UI workflow it came from, when there is one
  // The prompt as embedded in outputs, in the key order it arrived in; when null, `prompt`.
  nlohmann::ordered_json embedded_prompt;
  // extra_data.extra_pnginfo of a /prompt body, embedded after the prompt in key order; when
  // null, `workflow` is embedded as {"workflow": ...}.
  nlohmann::ordered_json extra_pnginfo;
  bool embed_metadata = true;  // false: --disable-metadata, outputs carry no prompt or workflow
  // Receives what an output node shows, in ComfyUI's shape ({"images": [{"filename",
  // "subfolder", "type"}], "animated": [true]}), with the node's id. May be empty.
  std::function<void(const std::string& node_id, const nlohmann::json& ui)> on_ui;
  // Receives a sampling node's data prediction x0 ([16, T, h, w]) after each step, for latent
  // previews. Empty (the default): samplers compute no prediction for it.
  std::function<void(const std::string& node_id, const at::Tensor& x0)> on_latent;

  // Throws wan::Cancelled when the run was cancelled. Long nodes call it between steps.
  void check_cancelled() const;
  // Reports step `step` of `steps` done for the running node, then checks cancellation.
  void report_step(int64_t step, int64_t steps);
  // Hands the running output node's `ui` to on_ui.
  void report_ui(const nlohmann::json& ui) const;
  // Hands the running sampler's step prediction to on_latent (a no-op without one).
  void report_latent(const at::Tensor& x0) const;
  // The device manager; throws wan::Error when the runner did not set one.
  device::DeviceManager& devices() const;
  // `name` in models_dir's `folder` directories; throws LoadError naming where it looked when
  // no directory has it.
  std::filesystem::path model_path(const std::string& folder, const std::string& name) const;

  // The node being executed ("12", "Sample") and "Sample (node 12)" for messages.
  const std::string& node_id() const { return node_id_; }
  const std::string& class_type() const { return class_type_; }
  std::string node_label() const;

 private:
  friend class Executor;
  friend Values run_node(const NodeRegistry& registry, const std::string& node_id,
                         const std::string& class_type, Values in, RunContext& run);
  std::string node_id_, class_type_;
};

class Node {
 public:
  virtual ~Node() = default;
  virtual Values execute(const Values& in, RunContext& run) = 0;
  // Cross-input (and cross-node) checks; runs on the whole graph before any node executes, and
  // only when the node's inputs and everything upstream passed the schema checks.
  virtual void validate(const NodeView& node, ValidationIssues& issues) const {
    (void)node;
    (void)issues;
  }
  // What execute() will hold and move in memory, declared to the planner (`--plan`, `auto`
  // placement) from literal inputs and the planned values of linked ones, without loading or
  // computing anything heavy. Returns false when the node declares no plan: the planner then
  // refuses the prompt rather than count the node as free.
  virtual bool plan(const Values& in, plan::PlanContext& plan) const {
    (void)in;
    (void)plan;
    return false;
  }
};

class NodeRegistry {
 public:
  using Factory = std::function<std::unique_ptr<Node>()>;

  template <class T>
  void add() {
    add(T::schema(), [] { return std::make_unique<T>(); });
  }
  // Throws std::invalid_argument when the class_type is already registered.
  void add(NodeSchema schema, Factory factory);

  const NodeSchema* find(const std::string& class_type) const;  // nullptr when unknown
  // Throws ValidationError when unknown.
  const NodeSchema& schema(const std::string& class_type) const;
  std::unique_ptr<Node> create(const std::string& class_type) const;
  std::vector<const NodeSchema*> schemas() const;  // sorted by class_type
  // ComfyUI's /object_info: {class_type: schema.object_info()}.
  nlohmann::json object_info(const ModelFolders& models_dir,
                             const std::filesystem::path& input_dir = {}) const;

 private:
  struct Entry {
    NodeSchema schema;
    Factory factory;
  };
  std::map<std::string, Entry> entries_;
};

}  // namespace wan::graph
