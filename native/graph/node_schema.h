// Declarative node schemas, in the shape of ComfyUI's `io.Schema` (comfy_api/latest/_io.py):
//
//   NodeSchema("LoadVAE", "wan/loaders")
//       .input(ModelFile("model_name", "vae"))
//       .input(Choice("placement", {"gpu", "cpu", "offload"}).default_to("gpu"))
//       .output("WAN_VAE");
//
// The runner, `--object-info`, the validator and the UI-workflow reader all read this one object.
#pragma once
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace wan::graph {

// Widget types; every other type string ("WAN_VAE", "IMAGE", "IMAGE,WAN_LATENT", "*") is a socket.
inline constexpr const char* kInt = "INT";
inline constexpr const char* kFloat = "FLOAT";
inline constexpr const char* kString = "STRING";
inline constexpr const char* kBoolean = "BOOLEAN";
inline constexpr const char* kCombo = "COMBO";

// Lists a combo's options when they depend on the installation, e.g. files in a models folder.
using ComboProvider =
    std::function<std::vector<std::string>(const std::filesystem::path& models_dir)>;

// One input of a node. Built with the factories below and chained setters:
//   Int("seed").min(0).max(kSeedMax).control_after_generate()
class Input {
 public:
  Input(std::string id, std::string type) : id_(std::move(id)), type_(std::move(type)) {}

  Input& default_to(nlohmann::json value);
  Input& min(nlohmann::json value);
  Input& max(nlohmann::json value);
  Input& step(nlohmann::json value);
  Input& multiline(bool on = true);
  Input& optional(bool on = true);
  Input& tooltip(std::string text);
  // How the frontend draws a number: "number" (default) or "slider".
  Input& display(std::string kind);
  // Adds the frontend's fixed/increment/decrement/randomize widget after a seed. The UI workflow
  // then stores one extra value after this input's value in widgets_values.
  Input& control_after_generate(bool on = true);
  // Show a widget type (INT, STRING, ...) as a socket only.
  Input& force_input(bool on = true);
  Input& options(std::vector<std::string> options);
  Input& options(ComboProvider provider);

  const std::string& id() const { return id_; }
  const std::string& type() const { return type_; }
  const nlohmann::json& default_value() const { return default_; }  // null when none
  const nlohmann::json& min_value() const { return min_; }          // null when unbounded
  const nlohmann::json& max_value() const { return max_; }
  const nlohmann::json& step_value() const { return step_; }
  bool is_multiline() const { return multiline_; }
  bool is_optional() const { return optional_; }
  bool has_control_after_generate() const { return control_after_generate_; }
  const std::string& tooltip_text() const { return tooltip_; }
  // Widgets take literal values (and widgets_values in the UI format); sockets take links.
  bool is_widget() const;
  bool is_combo() const { return type_ == kCombo; }
  // The combo's options now: the static list or what the provider finds under models_dir.
  std::vector<std::string> combo_options(const std::filesystem::path& models_dir) const;

  // ComfyUI's /object_info entry for this input: [type, {...}] or [[options...], {...}].
  nlohmann::json object_info(const std::filesystem::path& models_dir) const;

 private:
  std::string id_, type_;
  nlohmann::json default_, min_, max_, step_;
  bool multiline_ = false, optional_ = false, control_after_generate_ = false;
  bool force_input_ = false;
  std::string tooltip_, display_;
  std::vector<std::string> options_;
  ComboProvider provider_;
};

Input Int(std::string id);
Input Float(std::string id);
Input String(std::string id);
Input Boolean(std::string id);
Input Choice(std::string id, std::vector<std::string> options);
Input Choice(std::string id, ComboProvider provider);
// A combo of the model files (relative paths, '/'-separated, sorted) under models_dir/folder.
Input ModelFile(std::string id, std::string folder);
// A socket input: a link from another node's output of `type`.
Input Socket(std::string id, std::string type);

// Files under models_dir/folder (recursively) whose names end with one of `extensions`.
std::vector<std::string> list_model_files(const std::filesystem::path& models_dir,
                                          const std::string& folder,
                                          const std::vector<std::string>& extensions);
// .safetensors, .sft, .pth, .pt, .bin, .ckpt and .safetensors.index.json (sharded weights).
const std::vector<std::string>& model_file_extensions();

struct Output {
  std::string type, name, tooltip;
};

class NodeSchema {
 public:
  // `name` is the class_type that workflows use ("LoadVAE").
  NodeSchema(std::string name, std::string category);

  // Throws std::invalid_argument when an input with the same id exists: two inputs with one id
  // would make the prompt's {id: value} map ambiguous.
  NodeSchema& input(Input input);
  NodeSchema& output(std::string type, std::string name = "", std::string tooltip = "");
  NodeSchema& display_name(std::string text);
  NodeSchema& description(std::string text);
  // Output nodes (savers) are the roots the executor runs towards.
  NodeSchema& output_node(bool on = true);

  const std::string& name() const { return name_; }
  const std::string& category() const { return category_; }
  const std::string& display_name() const { return display_name_.empty() ? name_ : display_name_; }
  const std::string& description() const { return description_; }
  bool is_output_node() const { return output_node_; }
  const std::vector<Input>& inputs() const { return inputs_; }
  const std::vector<Output>& outputs() const { return outputs_; }
  const Input* find_input(const std::string& id) const;  // nullptr when absent
  // Required inputs, then optional ones: ComfyUI's order, which widgets_values follows.
  std::vector<const Input*> ordered_inputs() const;

  // ComfyUI's /object_info entry for this node.
  nlohmann::json object_info(const std::filesystem::path& models_dir) const;

 private:
  std::string name_, category_, display_name_, description_;
  bool output_node_ = false;
  std::vector<Input> inputs_;
  std::vector<Output> outputs_;
};

// Whether an output of `output_type` may feed `input`, as ComfyUI's validate_node_input decides:
// equal types, "*" on either side, or comma-separated unions that share a type.
bool types_compatible(const std::string& output_type, const Input& input);

}  // namespace wan::graph
