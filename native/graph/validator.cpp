#include "graph/validator.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include "core/path_rules.h"
#include "graph/workflow_json.h"

namespace wan::graph {

using nlohmann::json;

namespace {

json make_error(const std::string& type, const std::string& message, const std::string& details,
                json extra_info = json::object()) {
  return {{"type", type}, {"message", message}, {"details", details}, {"extra_info", extra_info}};
}

// Compares two JSON numbers exactly for any int64/uint64/double mix: long double holds 64 bits
// of mantissa on the platforms we build for.
long double as_long_double(const json& number) {
  if (number.is_number_unsigned()) return static_cast<long double>(number.get<uint64_t>());
  if (number.is_number_integer()) return static_cast<long double>(number.get<int64_t>());
  return static_cast<long double>(number.get<double>());
}

// "FakeSample (node 2)" for an entry of node_errors.
std::string node_label(const std::string& id, const json& entry) {
  const json& class_type = entry["class_type"];
  return (class_type.is_string() ? class_type.get<std::string>() : std::string("?")) + " (node " +
         id + ")";
}

// A received_value for extra_info: the value itself when small and shallow (invalid UTF-8
// replaced, so the report always serialises), else its brief text.
json received_json(const json& value) {
  constexpr int kMaxDepth = 4;
  constexpr size_t kMaxChars = 1000;
  if (json_depth(value, kMaxDepth) > kMaxDepth) return brief_json(value);
  const std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxChars) return brief_json(value);
  return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

// The nearest values that satisfy value % step == offset, value >= 1, for a message.
std::string nearest_valid(int64_t value, int64_t step, int64_t offset) {
  const int64_t first = offset == 0 ? step : offset;
  if (value < first) return std::to_string(first);
  const int64_t below = (value - offset) / step * step + offset;
  std::string text = below >= first ? std::to_string(below) + " or " : "";
  if (below <= std::numeric_limits<int64_t>::max() - step) text += std::to_string(below + step);
  return text;
}

std::string rule_text(int64_t step, int64_t offset) {
  if (offset == 0) return "a positive multiple of " + std::to_string(step);
  return std::to_string(step) + "k+" + std::to_string(offset);
}

json number_json(const Value& value) {
  return value.kind() == Value::Kind::kInt ? json(value.as_int()) : json(value.as_float());
}

class PromptValidator {
 public:
  PromptValidator(const json& prompt, const NodeRegistry& registry, const ValidateOptions& options)
      : prompt_(prompt), registry_(registry), options_(options) {}

  ValidationResult run() {
    ValidationResult result;
    if (!prompt_.is_object()) {
      result.ok = false;
      result.error = make_error("invalid_prompt", "The prompt is not a JSON object", "");
      return result;
    }
    ids_ = sorted_node_ids(prompt_);
    find_schemas(result.outputs);
    if (result.outputs.empty()) {
      result.ok = false;
      result.error = make_error("prompt_no_outputs", "Prompt has no outputs", "");
      fill_node_errors(result);
      return result;
    }
    std::set<std::string> needed;
    for (const auto& output : result.outputs) collect_ancestors(output, needed);
    for (const auto& id : ids_) {
      if (needed.count(id) && schemas_.count(id)) check_inputs(id);
    }
    check_cycles(needed);
    run_custom_validation(needed);
    fill_node_errors(result);
    if (!result.node_errors.empty()) {
      result.ok = false;
      // One line per error, the first kMaxDetailLines of them: a prompt with 100k broken nodes
      // still gets a summary one can print.
      constexpr size_t kMaxDetailLines = 100;
      std::string details;
      size_t lines = 0, total = 0;
      for (const auto& [id, entry] : result.node_errors.items()) {
        for (const auto& error : entry["errors"]) {
          if (++total > kMaxDetailLines) continue;
          details += (details.empty() ? "" : "\n") + node_label(id, entry) + ": " +
                     error["message"].get<std::string>() + ": " +
                     error["details"].get<std::string>();
          ++lines;
        }
      }
      if (total > lines)
        details += "\n... and " + std::to_string(total - lines) + " more errors";
      result.error = make_error("prompt_outputs_failed_validation",
                                "Prompt outputs failed validation", details);
      return result;
    }
    try {
      result.graph = typed_graph(prompt_, registry_, result.outputs);
    } catch (const ValidationError& e) {
      // The checks above convert every literal the same way; a refusal here is still a
      // validation result, never an exception out of validate_prompt.
      result.ok = false;
      result.error = make_error("prompt_outputs_failed_validation",
                                "Prompt outputs failed validation", e.what());
    }
    return result;
  }

 private:
  void add(const std::string& id, json error) { errors_[id].push_back(std::move(error)); }

  const json& inputs_of(const std::string& id) const {
    static const json kEmpty = json::object();
    const json& node = prompt_[id];
    auto it = node.find("inputs");
    return it != node.end() && it->is_object() ? *it : kEmpty;
  }

  void find_schemas(std::vector<std::string>& outputs) {
    for (const auto& id : ids_) {
      const json& node = prompt_[id];
      if (!node.is_object() || !node.contains("class_type") || !node["class_type"].is_string()) {
        add(id, make_error("invalid_prompt",
                           "Cannot execute because a node is missing the class_type property.",
                           "Node ID '#" + id + "'"));
        continue;
      }
      const std::string class_type = node["class_type"].get<std::string>();
      if (json_depth(node, kMaxNodeDepth) > kMaxNodeDepth) {
        add(id, make_error("invalid_prompt",
                           "The node nests deeper than " + std::to_string(kMaxNodeDepth) +
                               " levels (in its inputs, _meta or another field); a prompt node "
                               "holds scalars and links",
                           "Node ID '#" + id + "'"));
        continue;
      }
      const NodeSchema* schema = registry_.find(class_type);
      if (!schema) {
        std::string title = node_title(node);
        if (title.empty()) title = class_type;
        add(id, make_error("missing_node_type",
                           "Node '" + title + "' not found. No node of type '" + class_type +
                               "' is registered.",
                           "Node ID '#" + id + "'",
                           {{"node_id", id}, {"class_type", class_type}, {"node_title", title}}));
        continue;
      }
      if (node.contains("inputs") && !node["inputs"].is_object()) {
        add(id, make_error("invalid_prompt", "The node's 'inputs' is not an object",
                           "Node ID '#" + id + "'"));
        continue;
      }
      schemas_[id] = schema;
      if (schema->is_output_node()) outputs.push_back(id);
    }
  }

  // The ids linked from `id`'s inputs that exist in the prompt.
  std::vector<std::string> upstream_ids(const std::string& id) const {
    std::vector<std::string> ups;
    for (const auto& [name, value] : inputs_of(id).items()) {
      std::string up;
      int64_t index;
      if (parse_link(value, &up, &index) && prompt_.contains(up)) ups.push_back(up);
    }
    return ups;
  }

  void collect_ancestors(const std::string& root, std::set<std::string>& seen) const {
    std::vector<std::string> stack = {root};
    while (!stack.empty()) {
      std::string id = stack.back();
      stack.pop_back();
      if (!seen.insert(id).second) continue;
      for (auto& up : upstream_ids(id)) stack.push_back(up);
    }
  }

  void check_inputs(const std::string& id) {
    const NodeSchema& schema = *schemas_.at(id);
    const json& inputs = inputs_of(id);
    for (const Input* input : schema.ordered_inputs()) {
      const std::string& name = input->id();
      auto config = [&] { return input->object_info(options_.models_dir); };
      if (!inputs.contains(name) || inputs[name].is_null()) {
        if (!input->is_optional()) {
          add(id, make_error("required_input_missing", "Required input is missing", name,
                             {{"input_name", name}}));
        }
        continue;
      }
      const json& value = inputs[name];
      if (value.is_array()) {
        check_link(id, *input, value);
        continue;
      }
      if (!input->is_widget()) {
        add(id, make_error(
                    "invalid_input_type", "Input needs a link from another node",
                    name + ": a " + input->type() + " input takes [node_id, output_index], not " +
                        brief_json(value),
                    {{"input_name", name},
                     {"input_config", config()},
                     {"received_value", received_json(value)}}));
        continue;
      }
      Value converted;
      try {
        converted = literal_value(value, *input);
      } catch (const ValidationError& e) {
        add(id, make_error("invalid_input_type",
                           "Failed to convert an input value to a " + input->type() + " value",
                           name + ", " + brief_json(value) + ", " + e.what(),
                           {{"input_name", name},
                            {"input_config", config()},
                            {"received_value", received_json(value)},
                            {"exception_message", e.what()}}));
        continue;
      }
      if (!check_rules(id, *input, converted, value)) continue;
      if (input->type() == kInt || input->type() == kFloat) {
        const json number = number_json(converted);
        const json& min = input->min_value();
        const json& max = input->max_value();
        if (min.is_number() && as_long_double(number) < as_long_double(min)) {
          add(id,
              make_error(
                  "value_smaller_than_min",
                  "Value " + number.dump() + " smaller than min of " + min.dump(), name,
                  {{"input_name", name}, {"input_config", config()}, {"received_value", received_json(value)}}));
          continue;
        }
        if (max.is_number() && as_long_double(number) > as_long_double(max)) {
          add(id,
              make_error(
                  "value_bigger_than_max",
                  "Value " + number.dump() + " bigger than max of " + max.dump(), name,
                  {{"input_name", name}, {"input_config", config()}, {"received_value", received_json(value)}}));
          continue;
        }
      }
      if (input->is_combo() && input->upload_kind().empty()) {  // uploads: input_file() checks them
        const auto options = input->combo_options(options_.models_dir);
        const std::string& text = converted.as_string();
        if (std::find(options.begin(), options.end(), text) == options.end()) {
          // Like ComfyUI, long lists (scanned model folders) are summarised.
          const bool long_list = options.size() > 20;
          std::string list = "[";
          for (size_t i = 0; i < options.size() && !long_list; ++i) {
            list += (i ? ", '" : "'") + options[i] + "'";
          }
          list = long_list ? "(list of length " + std::to_string(options.size()) + ")" : list + "]";
          add(id, make_error("value_not_in_list", "Value not in list",
                             name + ": '" + text + "' not in " + list,
                             {{"input_name", name},
                              {"input_config", long_list ? json(nullptr) : config()},
                              {"received_value", received_json(value)}}));
        }
      }
    }
    for (const auto& [name, value] : inputs.items()) {
      if (!schema.find_input(name)) {
        spdlog::debug("node {} ({}): ignoring input '{}', which the schema does not have", id,
                      schema.name(), name);
      }
    }
  }

  // The rules `input` declares (node_schema.h), on a literal that converted. False when one
  // failed (the error is recorded and the remaining checks of this input are skipped).
  bool check_rules(const std::string& id, const Input& input, const Value& converted,
                   const json& value) {
    const std::string& name = input.id();
    auto fail = [&](const std::string& type, const std::string& message, std::string details) {
      add(id, make_error(type, message, name + ": " + details,
                         {{"input_name", name},
                          {"input_config", input.is_combo() ? json(nullptr)
                                                            : input.object_info(options_.models_dir)},
                          {"received_value", received_json(value)}}));
      return false;
    };
    if (converted.kind() == Value::Kind::kString) {
      const std::string& text = converted.as_string();
      if (text.find('\0') != std::string::npos)
        return fail("invalid_input_type", "Value holds a NUL byte",
                    brief_json(value) + " holds a NUL byte, which would cut the text short");
      if (!is_valid_utf8(text))
        return fail("invalid_input_type", "Value is not valid UTF-8",
                    brief_json(value) + " is not valid UTF-8 text");
    }
    const int64_t step = input.multiple_of_step();
    if (step > 0 && converted.kind() == Value::Kind::kInt) {
      const int64_t v = converted.as_int();
      const int64_t offset = input.multiple_of_offset();
      if (v < 1 || v % step != offset)
        return fail("custom_validation_failed", "Value breaks the node's size rule",
                    std::to_string(v) + " is not " + rule_text(step, offset) + "; use " +
                        nearest_valid(v, step, offset));
    }
    if (converted.kind() != Value::Kind::kString) return true;
    const std::string& text = converted.as_string();
    try {
      switch (input.path_rule()) {
        case PathRule::kNone:
          break;
        case PathRule::kOutputPrefix: {
          const OutputPrefix prefix = parse_output_prefix(text);
          if (!options_.output_dir.empty()) {
            const auto folder = prefix.subfolder.empty() ? options_.output_dir
                                                         : options_.output_dir / prefix.subfolder;
            const std::string why = folder_unwritable_reason(folder);
            if (!why.empty())
              throw ValidationError("the output folder " + brief_json(folder.string()) +
                                    " cannot receive files: " + why);
          }
          break;
        }
        case PathRule::kInputFile: {
          const AnnotatedName file = parse_annotated_name(text);
          const auto base = file.folder == AnnotatedFolder::kOutput ? options_.output_dir
                            : file.folder == AnnotatedFolder::kTemp ? options_.output_dir / "temp"
                                                                    : options_.input_dir;
          check_input_file(base, file.name, input.input_files() == InputFiles::kFileOrPattern);
          break;
        }
        case PathRule::kModelFile: {
          const auto& exempt = input.no_file_values();
          if (std::find(exempt.begin(), exempt.end(), text) != exempt.end()) break;
          if (options_.models_dir.empty()) break;  // nothing to resolve against
          options_.models_dir.resolve(input.model_folder_name(), text, input.allows_folder());
          break;
        }
      }
    } catch (const ValidationError& e) {
      return fail("custom_validation_failed", "Value names a path the node cannot use", e.what());
    }
    return true;
  }

  void check_link(const std::string& id, const Input& input, const json& value) {
    const std::string& name = input.id();
    std::string up;
    int64_t index = 0;
    json extra = {{"input_name", name}, {"received_value", received_json(value)}};
    if (!parse_link(value, &up, &index)) {
      add(id, make_error("bad_linked_input",
                         "Bad linked input, must be a length-2 list of [node_id, slot_index]", name,
                         extra));
      return;
    }
    if (!prompt_.contains(up)) {
      add(id, make_error("bad_linked_input", "Linked node does not exist",
                         name + ": node '" + up + "' is not in the prompt", extra));
      return;
    }
    auto schema_it = schemas_.find(up);
    if (schema_it == schemas_.end()) return;  // the linked node reports its own error
    const auto& outputs = schema_it->second->outputs();
    if (index < 0 || index >= static_cast<int64_t>(outputs.size())) {
      add(id, make_error("bad_linked_input", "Linked output index out of range",
                         name + ": " + schema_it->second->name() + " (node " + up + ") has " +
                             std::to_string(outputs.size()) + " outputs, link asks for output " +
                             std::to_string(index),
                         extra));
      return;
    }
    const std::string& received = outputs[index].type;
    if (!types_compatible(received, input)) {
      add(id, make_error("return_type_mismatch", "Return type mismatch between linked nodes",
                         name + ", received_type(" + received + ") mismatch input_type(" +
                             input.type() + ")",
                         {{"input_name", name},
                          {"input_config", input.object_info(options_.models_dir)},
                          {"received_type", received},
                          {"linked_node", received_json(value)}}));
    }
  }

  // Every node on a cycle gets one error that spells the cycle out. Iterative depth-first
  // search, so a long chain cannot overflow the call stack.
  void check_cycles(const std::set<std::string>& needed) {
    std::map<std::string, int> state;  // 0 new, 1 on the path, 2 done
    std::set<std::string> reported;
    struct Frame {
      std::string id;
      std::vector<std::string> ups;
      size_t next = 0;
    };
    for (const auto& root : ids_) {
      if (!needed.count(root) || state[root] != 0) continue;
      std::vector<Frame> path;
      state[root] = 1;
      path.push_back({root, upstream_ids(root), 0});
      while (!path.empty()) {
        Frame& top = path.back();
        if (top.next == top.ups.size()) {
          state[top.id] = 2;
          path.pop_back();
          continue;
        }
        const std::string up = top.ups[top.next++];
        if (state[up] == 1) {
          auto start = std::find_if(path.begin(), path.end(),
                                    [&](const Frame& frame) { return frame.id == up; });
          std::vector<std::string> cycle;
          for (auto it = start; it != path.end(); ++it) cycle.push_back(it->id);
          std::string text;
          for (const auto& node : cycle) text += node + " -> ";
          text += up;
          for (const auto& node : cycle) {
            if (!reported.insert(node).second) continue;
            add(node, make_error("dependency_cycle", "Dependency cycle detected", brief(text),
                                 {{"cycle", cycle.size() <= 100 ? json(cycle) : json(brief(text))}}));
          }
        } else if (state[up] == 0) {
          state[up] = 1;
          path.push_back({up, upstream_ids(up), 0});
        }
      }
    }
  }

  static std::string brief(const std::string& text) {
    constexpr size_t kMaxChars = 300;
    return text.size() <= kMaxChars ? text : text.substr(0, kMaxChars) + "...";
  }

  // A node is clean when it and everything upstream passed the checks so far. Cycle nodes carry
  // errors, so the walk never loops; it is iterative so long chains cannot overflow the stack.
  bool is_clean(const std::string& root, std::map<std::string, bool>& memo) const {
    if (auto it = memo.find(root); it != memo.end()) return it->second;
    std::vector<std::pair<std::string, bool>> stack = {{root, false}};  // (id, ups pushed)
    while (!stack.empty()) {
      auto [id, expanded] = stack.back();
      if (memo.count(id)) {
        stack.pop_back();
        continue;
      }
      const bool own = schemas_.count(id) && !errors_.count(id);
      if (!own) {
        memo[id] = false;
        stack.pop_back();
        continue;
      }
      const auto ups = upstream_ids(id);
      if (!expanded) {
        stack.back().second = true;
        for (const auto& up : ups)
          if (!memo.count(up)) stack.push_back({up, false});
        continue;
      }
      bool clean = true;
      for (const auto& up : ups) clean = clean && memo.count(up) && memo.at(up);
      memo[id] = clean;
      stack.pop_back();
    }
    return memo.at(root);
  }

  void run_custom_validation(const std::set<std::string>& needed) {
    std::map<std::string, bool> memo;
    std::map<std::string, std::unique_ptr<NodeView>> views;
    for (const auto& id : ids_) {
      if (!needed.count(id) || !is_clean(id, memo)) continue;
      const NodeSchema& schema = *schemas_.at(id);
      views[id] =
          std::make_unique<NodeView>(id, schema.name(), literal_values(inputs_of(id), schema));
    }
    for (auto& [id, view] : views) {
      for (const auto& [name, value] : inputs_of(id).items()) {
        std::string up;
        int64_t index;
        if (!parse_link(value, &up, &index)) continue;
        auto up_view = views.find(up);
        if (up_view != views.end()) view->set_upstream(name, up_view->second.get(), index);
      }
    }
    for (auto& [id, view] : views) {
      ValidationIssues issues;
      try {
        registry_.create(view->class_type())->validate(*view, issues);
      } catch (const std::exception& e) {
        add(id, make_error("exception_during_validation", "Exception when validating node",
                           e.what(), {{"exception_message", e.what()}}));
        continue;
      }
      for (const auto& [input_name, message] : issues.all()) {
        add(id, make_error("custom_validation_failed", "Custom validation failed for node",
                           input_name + " - " + message, {{"input_name", input_name}}));
      }
    }
  }

  void fill_node_errors(ValidationResult& result) const {
    std::map<std::string, std::set<std::string>> ancestors;
    for (const auto& output : result.outputs) collect_ancestors(output, ancestors[output]);
    for (const auto& [id, errors] : errors_) {
      json dependents = json::array();
      for (const auto& output : result.outputs) {
        if (ancestors[output].count(id)) dependents.push_back(output);
      }
      const json& node = prompt_[id];
      result.node_errors[id] = {
          {"errors", errors},
          {"dependent_outputs", dependents},
          {"class_type",
           node.is_object() ? node.value("class_type", json(nullptr)) : json(nullptr)}};
    }
  }

  const json& prompt_;
  const NodeRegistry& registry_;
  const ValidateOptions& options_;
  std::vector<std::string> ids_;
  std::map<std::string, const NodeSchema*> schemas_;
  std::map<std::string, std::vector<json>> errors_;
};

std::string summarize(const json& report) {
  std::string text = "invalid workflow";
  if (report.contains("error") && report["error"].is_object()) {
    text += ": " + report["error"].value("message", "");
  }
  if (report.contains("node_errors")) {
    for (const auto& [id, entry] : report["node_errors"].items()) {
      for (const auto& error : entry["errors"]) {
        text += "\n  " + node_label(id, entry) + ": " + error.value("message", "") + ": " +
                error.value("details", "");
      }
    }
  }
  return text;
}

}  // namespace

json ValidationResult::to_json() const { return {{"error", error}, {"node_errors", node_errors}}; }

ValidationResult validate_prompt(const json& prompt, const NodeRegistry& registry,
                                 const ValidateOptions& options) {
  return PromptValidator(prompt, registry, options).run();
}

InvalidPrompt::InvalidPrompt(json report)
    : ValidationError(summarize(report)), report_(std::move(report)) {}

Value literal_value(const json& literal, const Input& input) {
  const std::string& type = input.type();
  if (!input.is_widget()) {
    throw ValidationError("a " + type + " input takes a link [node_id, output_index]");
  }
  if (type == kInt) {
    if (literal.is_number_unsigned()) {
      if (literal.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        throw ValidationError(brief_json(literal) + " does not fit a 64-bit signed integer");
      }
      return static_cast<int64_t>(literal.get<uint64_t>());
    }
    if (literal.is_number_integer()) return literal.get<int64_t>();
    if (literal.is_number_float()) {
      const double v = literal.get<double>();
      // 2^63 is exactly representable; anything at or above it overflows int64.
      if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9223372036854775808.0) {
        return static_cast<int64_t>(v);
      }
    }
    throw ValidationError("expected an integer, got " + brief_json(literal));
  }
  if (type == kFloat) {
    if (literal.is_number()) return literal.get<double>();
    throw ValidationError("expected a number, got " + brief_json(literal));
  }
  if (type == kBoolean) {
    if (literal.is_boolean()) return literal.get<bool>();
    throw ValidationError("expected true or false, got " + brief_json(literal));
  }
  if (literal.is_string()) return literal.get<std::string>();  // STRING, COMBO
  throw ValidationError("expected a string, got " + brief_json(literal));
}

int json_depth(const json& value, int limit) {
  int deepest = 0;
  std::vector<std::pair<const json*, int>> stack = {{&value, 0}};
  while (!stack.empty()) {
    const auto [node, depth] = stack.back();
    stack.pop_back();
    if (!node->is_structured()) continue;
    deepest = std::max(deepest, depth + 1);
    if (deepest > limit) return deepest;
    for (const auto& child : *node) stack.push_back({&child, depth + 1});
  }
  return deepest;
}

std::string brief_json(const json& value, size_t max_chars) {
  constexpr int kMaxDepth = 16;
  const int depth = json_depth(value, kMaxDepth);
  if (depth > kMaxDepth)
    return std::string(value.is_array() ? "[...]" : "{...}") + " (nested deeper than " +
           std::to_string(kMaxDepth) + " levels)";
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > max_chars) {
    size_t cut = max_chars;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // whole chars
    text = text.substr(0, cut) + "... (" + std::to_string(text.size()) + " chars)";
  }
  return text;
}

Values literal_values(const json& node_inputs, const NodeSchema& schema) {
  Values values;
  for (const Input& input : schema.inputs()) {
    if (!input.is_widget()) continue;
    auto it = node_inputs.find(input.id());
    const bool present = it != node_inputs.end() && !it->is_null();
    if (present && it->is_array()) continue;  // a link
    const json& literal = present ? *it : input.default_value();
    if (literal.is_null()) continue;
    try {
      values.set(input.id(), literal_value(literal, input));
    } catch (const ValidationError& e) {
      throw ValidationError(schema.name() + " input '" + input.id() + "': " + e.what());
    }
  }
  return values;
}

}  // namespace wan::graph
