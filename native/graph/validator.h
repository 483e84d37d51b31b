// Checks an API prompt before anything runs, the way ComfyUI's validate_prompt does, but collects
// every error instead of stopping at the first, and reports them in ComfyUI's JSON:
//
//   {"error": {"type": "prompt_outputs_failed_validation", "message", "details", "extra_info"},
//    "node_errors": {"12": {"errors": [{"type": "value_bigger_than_max", "message", "details",
//                                       "extra_info": {"input_name": "steps", ...}}],
//                           "dependent_outputs": ["9"], "class_type": "Sample"}}}
//
// Beyond ComfyUI, the rules an Input declares (node_schema.h: multiple_of, output_prefix,
// input_file, model_folder) are checked here, each failure a custom_validation_failed naming the
// input; STRING/COMBO literals with a NUL or invalid UTF-8 are invalid_input_type. Every value
// quoted in a message is cut short and printable, however deep or malformed.
//
// Error types (ComfyUI's strings): invalid_prompt, missing_node_type, prompt_no_outputs,
// required_input_missing, bad_linked_input, return_type_mismatch, invalid_input_type,
// value_smaller_than_min, value_bigger_than_max, value_not_in_list, dependency_cycle,
// custom_validation_failed, exception_during_validation, prompt_outputs_failed_validation.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "graph/node_registry.h"
#include "graph/typed_graph.h"

namespace wan::graph {

struct ValidateOptions {
  ModelFolders models_dir;  // where combo providers (model files) look
  // Where output_prefix() inputs save and relative input_file() names are read; an empty
  // output_dir skips the writable-folder check (a caller that saves nothing).
  std::filesystem::path output_dir;
  std::filesystem::path input_dir;
};

// How deep a prompt node (its inputs, _meta and anything else) may nest; deeper is refused,
// since the node is copied into every output's metadata.
inline constexpr int kMaxNodeDepth = 32;

struct ValidationResult {
  bool ok = true;
  nlohmann::json error;  // null when ok
  nlohmann::json node_errors = nlohmann::json::object();
  std::vector<std::string> outputs;  // output node ids, sorted
  TypedGraph graph;                  // when ok: what the outputs need, in execution order
  // {"error": ..., "node_errors": ...}
  nlohmann::json to_json() const;
};

ValidationResult validate_prompt(const nlohmann::json& prompt, const NodeRegistry& registry,
                                 const ValidateOptions& options = {});

// A prompt that failed validation; what() is a readable summary, report() ComfyUI's JSON.
class InvalidPrompt : public ValidationError {
 public:
  explicit InvalidPrompt(nlohmann::json report);
  const nlohmann::json& report() const { return report_; }

 private:
  nlohmann::json report_;
};

// A literal converted per the input's schema type. Integral floats are accepted for INT (as
// Python's int() would); fractions, out-of-range numbers and other JSON types throw
// ValidationError. A socket input never takes a literal.
Value literal_value(const nlohmann::json& literal, const Input& input);

// The literal inputs of one prompt node, converted; absent inputs with a schema default get it.
// Links are left out. Throws ValidationError (naming the input) on a bad literal.
Values literal_values(const nlohmann::json& node_inputs, const NodeSchema& schema);

// Nesting depth of `value` (a scalar is 0, [] is 1), counted without recursion and at most
// `limit` + 1 (counting stops there).
int json_depth(const nlohmann::json& value, int limit);

// `value` as short printable JSON for a message: invalid UTF-8 replaced, cut at `max_chars`,
// values deeper than a few levels summarised; never throws.
std::string brief_json(const nlohmann::json& value, size_t max_chars = 200);

}  // namespace wan::graph
