// Declarative node schemas, in the shape of ComfyUI's `io.Schema` (comfy_api/latest/_io.py):
//
//   NodeSchema("LoadVAE", "wan/loaders")
//       .input(ModelFile("model_name", "vae"))
//       .input(Choice("placement", {"gpu", "cpu", "offload"}).default_to("gpu"))
//       .output("WAN_VAE");
//
// The runner, `--object-info`, the validator and the UI-workflow reader all read this one object.
//
// Rules the validator enforces before any node runs (declare them here; execute() may assume them):
//   Int("width").multiple_of(16)            a positive multiple of 16
//   Int("frames").multiple_of(4, 1)         4k+1 (value % 4 == 1, value >= 1)
//   String("filename_prefix").output_prefix()
//       relative, never leaving the output folder ('..', absolute), not empty; the output folder
//       must exist or be creatable, and be writable
//   String("image").input_file()            not empty; an existing regular file, absolute or
//                                           relative to the input folder
//   String("video").input_file(InputFiles::kFileOrPattern)
//                                           the same, or a glob ('*', '?') matching >= 1 file
//   ModelFile("model_name", "vae")          declares .model_folder("vae"): a regular file that
//                                           resolves inside models/vae after following symlinks,
//                                           every shard of a *.index.json too
//   Choice("tokenizer", ...).model_folder("tokenizers").allow_folder().no_file_value("from_checkpoint")
// Every STRING and COMBO literal is refused when it holds a NUL or is not valid UTF-8.
// Each broken rule is a node_errors entry naming the input (exit 2, nothing loaded).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/model_folders.h"

namespace wan::graph {

// Widget types; every other type string ("WAN_VAE", "IMAGE", "IMAGE,WAN_LATENT", "*") is a socket.
inline constexpr const char* kInt = "INT";
inline constexpr const char* kFloat = "FLOAT";
inline constexpr const char* kString = "STRING";
inline constexpr const char* kBoolean = "BOOLEAN";
inline constexpr const char* kCombo = "COMBO";

// Lists a combo's options when they depend on the installation, e.g. files in a models folder.
using ComboProvider = std::function<std::vector<std::string>(const ModelFolders& models)>;

// What a STRING or COMBO input names on disk; the validator checks it before anything runs.
enum class PathRule { kNone, kOutputPrefix, kInputFile, kModelFile };
enum class InputFiles { kFile, kFileOrPattern };  // kFileOrPattern: a glob matching >= 1 file

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
  // Adds the frontend's fixed/increment/decrement/randomize widget after a seed. The UI workflow
  // then stores one extra value after this input's value in widgets_values.
  Input& control_after_generate(bool on = true);
  // Show a widget type (INT, STRING, ...) as a socket only.
  Input& force_input(bool on = true);
  Input& options(std::vector<std::string> options);
  Input& options(ComboProvider provider);
  // A COMBO of the files in the input folder with the frontend's upload button, as ComfyUI's
  // LoadImage ("image") and LoadVideo ("video") declare it: {"image_upload": true}. Values need
  // not be listed (uploads, annotated names "x.png [input]"); declare input_file() to check them.
  Input& upload(std::string kind);

  // Validation rules (see the top of this file).
  // INT: value >= 1 and value % step == offset; multiple_of(4, 1) is the 4k+1 frame rule.
  Input& multiple_of(int64_t step, int64_t offset = 0);
  // STRING: a filename prefix under the output folder ("videos/wan").
  Input& output_prefix();
  // STRING: a file to read, absolute or relative to the input folder.
  Input& input_file(InputFiles kind = InputFiles::kFile);
  // STRING/COMBO: a file under models_dir/folder. ModelFile() declares it.
  Input& model_folder(std::string folder);
  // With model_folder: the name may also be a folder (a tokenizer folder).
  Input& allow_folder(bool on = true);
  // With model_folder: a value that names no file ("from_checkpoint"); it is not checked.
  Input& no_file_value(std::string value);
  // INT: the value `auto_value` asks the memory planner to choose among `candidates`, in order
  // of preference, the first with which the prompt fits (placement auto's search,
  // plan/auto_placement.h); it is resolved before anything runs.
  Input& planner_choice(int64_t auto_value, std::vector<int64_t> candidates);
  // COMBO: the same with options (`auto_value` and the candidates among them).
  Input& planner_choice(std::string auto_value, std::vector<std::string> candidates);
  // With planner_choice: the choice matters only while the node's input `input` is `value`
  // (LoadDiT's resident_blocks with placement stream); otherwise the planner sets the default.
  Input& planner_choice_when(std::string input, std::string value);

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
  int64_t multiple_of_step() const { return multiple_of_step_; }  // 0: no rule
  int64_t multiple_of_offset() const { return multiple_of_offset_; }
  PathRule path_rule() const { return path_rule_; }
  InputFiles input_files() const { return input_files_; }
  const std::string& model_folder_name() const { return model_folder_; }
  bool allows_folder() const { return allow_folder_; }
  const std::vector<std::string>& no_file_values() const { return no_file_values_; }
  const std::string& upload_kind() const { return upload_; }  // "" when no upload button
  bool has_planner_choice() const { return !planner_candidates_.empty(); }
  // An integer (INT) or a string (COMBO).
  const nlohmann::json& planner_auto_value() const { return planner_auto_value_; }
  const std::vector<nlohmann::json>& planner_candidates() const { return planner_candidates_; }
  // {input, value} of planner_choice_when; empty input when the choice always matters.
  const std::pair<std::string, std::string>& planner_condition() const { return planner_when_; }

  // The combo's options now: the static list, what the provider finds under models_dir, or for
  // an upload combo the files of that kind in input_dir.
  std::vector<std::string> combo_options(const ModelFolders& models_dir,
                                         const std::filesystem::path& input_dir = {}) const;

  // ComfyUI's /object_info entry for this input: [type, {...}] or [[options...], {...}].
  nlohmann::json object_info(const ModelFolders& models_dir,
                             const std::filesystem::path& input_dir = {}) const;

 private:
  std::string id_, type_;
  nlohmann::json default_, min_, max_, step_;
  bool multiline_ = false, optional_ = false, control_after_generate_ = false;
  bool force_input_ = false;
  std::string tooltip_;
  std::vector<std::string> options_;
  ComboProvider provider_;
  int64_t multiple_of_step_ = 0, multiple_of_offset_ = 0;
  PathRule path_rule_ = PathRule::kNone;
  InputFiles input_files_ = InputFiles::kFile;
  std::string model_folder_;
  bool allow_folder_ = false;
  std::vector<std::string> no_file_values_;
  std::string upload_;
  nlohmann::json planner_auto_value_;
  std::vector<nlohmann::json> planner_candidates_;
  std::pair<std::string, std::string> planner_when_;
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

// Files under models_dir/folder (recursively) whose names end with one of `extensions`. Symlinks
// are followed only to targets inside the folder, each folder once, at most kModelListDepth deep;
// names that are not valid UTF-8 are skipped (a combo must be JSON).
inline constexpr int kModelListDepth = 16;
std::vector<std::string> list_model_files(const ModelFolders& models_dir,
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
  // A native implementation of a ComfyUI core node under its own name and schema (`module` is
  // ComfyUI's python_module, e.g. "nodes"). Inside ComfyUI the shim leaves these to ComfyUI.
  NodeSchema& comfy_core(std::string module);
  // A hidden input ComfyUI fills (e.g. "prompt" -> "PROMPT"), listed in /object_info.
  NodeSchema& hidden(std::string id, std::string type);

  const std::string& name() const { return name_; }
  const std::string& category() const { return category_; }
  const std::string& display_name() const { return display_name_.empty() ? name_ : display_name_; }
  const std::string& description() const { return description_; }
  bool is_output_node() const { return output_node_; }
  bool is_comfy_core() const { return !core_module_.empty(); }
  const std::vector<Input>& inputs() const { return inputs_; }
  const std::vector<Output>& outputs() const { return outputs_; }
  const Input* find_input(const std::string& id) const;  // nullptr when absent
  // Required inputs, then optional ones: ComfyUI's order, which widgets_values follows.
  std::vector<const Input*> ordered_inputs() const;

  // ComfyUI's /object_info entry for this node.
  nlohmann::json object_info(const ModelFolders& models_dir,
                             const std::filesystem::path& input_dir = {}) const;

 private:
  std::string name_, category_, display_name_, description_, core_module_;
  std::vector<std::pair<std::string, std::string>> hidden_;
  bool output_node_ = false;
  std::vector<Input> inputs_;
  std::vector<Output> outputs_;
};

// Whether an output of `output_type` may feed `input`, as ComfyUI's validate_node_input decides:
// equal types, "*" on either side, or comma-separated unions that share a type.
bool types_compatible(const std::string& output_type, const Input& input);

}  // namespace wan::graph
