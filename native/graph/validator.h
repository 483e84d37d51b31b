// Checks an API prompt before anything runs, the way ComfyUI's validate_prompt does, but collects
// every error instead of stopping at the first, and reports them in ComfyUI's JSON:
//
//   {"error": {"type": "prompt_outputs_failed_validation", "message", "details", "extra_info"},
//    "node_errors": {"12": {"errors": [{"type": "value_bigger_than_max", "message", "details",
//                                       "extra_info": {"input_name": "steps", ...}}],
//                           "dependent_outputs": ["9"], "class_type": "Sample"}}}
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

namespace wan::graph {

struct ValidateOptions {
  std::filesystem::path models_dir;  // where combo providers (model files) look
};

struct ValidationResult {
  bool ok = true;
  nlohmann::json error;  // null when ok
  nlohmann::json node_errors = nlohmann::json::object();
  std::vector<std::string> outputs;  // output node ids, sorted
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

}  // namespace wan::graph
