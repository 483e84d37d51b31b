#include "graph/workflow_json.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>

#include "core/bounded_json.h"
#include "core/error.h"
#include "graph/group_nodes.h"
#include "graph/subgraphs.h"
#include "io/input_file.h"

namespace wan::graph {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr int kModeMuted = 2;     // litegraph NEVER
constexpr int kModeBypassed = 4;  // ComfyUI's bypass

// Nodes that exist only in the frontend and never reach the backend.
bool is_frontend_only(const std::string& type) {
  return type == "Note" || type == "MarkdownNote" || type == "Reroute" || type == "PrimitiveNode";
}

std::string id_string(const json& id) {
  if (id.is_string()) return id.get<std::string>();
  if (id.is_number_integer()) return std::to_string(id.get<int64_t>());
  throw ValidationError("workflow: node id " + id.dump() + " is neither a number nor a string");
}

// An integer field of a UI workflow (a link id, a slot): a float such as 6e47 has no int64 value
// (converting it would be undefined), so it is an error like any other wrong type.
int64_t integer_field(const json& value, const char* what) {
  if (!value.is_number_integer())
    throw ValidationError(std::string("workflow: ") + what + " " + printable(value.dump(), 40) +
                          " is not an integer");
  return value.get<int64_t>();
}

const json& api_nodes(const json& workflow) {
  if (workflow.is_object() && workflow.contains("prompt") && workflow["prompt"].is_object() &&
      !workflow.contains("class_type")) {
    return workflow["prompt"];
  }
  return workflow;
}

struct UiLink {
  std::string origin;
  int64_t origin_slot = 0;
};

// Where a UI input's value comes from once frontend-only and bypassed nodes are resolved.
struct Source {
  enum class Kind { kNone, kLink, kLiteral } kind = Kind::kNone;
  std::string node;
  int64_t slot = 0;
  json literal;
};

class UiGraph {
 public:
  explicit UiGraph(const json& ui) {
    for (const auto& node : ui["nodes"]) {
      if (!node.is_object() || !node.contains("id")) {
        throw ValidationError("workflow: a node has no 'id': " + node.dump().substr(0, 200));
      }
      nodes_[id_string(node["id"])] = &node;
    }
    if (!ui.contains("links") || ui["links"].is_null()) return;
    for (const auto& link : ui["links"]) {
      int64_t id;
      UiLink parsed;
      if (link.is_array() && link.size() >= 5) {  // [id, origin, origin_slot, target, slot, type]
        id = integer_field(link[0], "link id");
        parsed.origin = id_string(link[1]);
        parsed.origin_slot = integer_field(link[2], "link origin slot");
      } else if (link.is_object() && link.contains("id") && link.contains("origin_id")) {
        id = integer_field(link["id"], "link id");
        parsed.origin = id_string(link["origin_id"]);
        parsed.origin_slot =
            link.contains("origin_slot") ? integer_field(link["origin_slot"], "link origin slot") : 0;
      } else {
        throw ValidationError("workflow: malformed link " + link.dump().substr(0, 200));
      }
      links_[id] = parsed;
    }
  }

  const std::map<std::string, const json*>& nodes() const { return nodes_; }

  // Follows a link back through Reroute and bypassed nodes, as graphToPrompt does.
  Source resolve(const std::string& node_id, const std::string& input_name, int64_t link_id,
                 const std::string& wanted_type) const {
    // Each hop moves to a different node; more hops than nodes means a loop of reroutes.
    for (size_t hops = 0; hops <= nodes_.size(); ++hops) {
      auto link = links_.find(link_id);
      if (link == links_.end()) {
        throw ValidationError("workflow: node " + node_id + " input '" + input_name +
                              "' uses link " + std::to_string(link_id) +
                              ", which is not in 'links'");
      }
      auto origin_it = nodes_.find(link->second.origin);
      // A link from a node that is not there: keep it, the validator names the missing node.
      if (origin_it == nodes_.end())
        return {Source::Kind::kLink, link->second.origin, link->second.origin_slot, {}};
      const json& origin = *origin_it->second;
      const std::string type = origin.value("type", "");
      const int mode = origin.value("mode", 0);
      if (type == "Reroute" || mode == kModeBypassed) {
        std::optional<int64_t> next = pass_through(origin, link->second.origin_slot, wanted_type,
                                                   /*any_type=*/type == "Reroute");
        if (!next) return {};
        link_id = *next;
        continue;
      }
      if (mode == kModeMuted) return {};
      if (type == "PrimitiveNode") {
        const json values = origin.value("widgets_values", json::array());
        if (!values.is_array() || values.empty()) return {};
        return {Source::Kind::kLiteral, "", 0, values[0]};
      }
      return {Source::Kind::kLink, link->second.origin, link->second.origin_slot, {}};
    }
    throw ValidationError("workflow: node " + node_id + " input '" + input_name +
                          "' is fed by a loop of Reroute/bypassed nodes");
  }

 private:
  // The input link a Reroute or a bypassed node passes on for its output `slot`: the input at the
  // same index when its type matches, else the first input of the wanted type.
  static std::optional<int64_t> pass_through(const json& node, int64_t slot,
                                             const std::string& wanted_type, bool any_type) {
    const json inputs = node.value("inputs", json::array());
    std::vector<int64_t> candidates = {slot};
    for (int64_t i = 0; i < static_cast<int64_t>(inputs.size()); ++i) candidates.push_back(i);
    for (int64_t i : candidates) {
      if (i < 0 || i >= static_cast<int64_t>(inputs.size())) continue;
      const json& input = inputs[i];
      if (!any_type && input.value("type", "") != wanted_type) continue;
      if (!input.contains("link") || input["link"].is_null()) return std::nullopt;
      return integer_field(input["link"], "input link");
    }
    return std::nullopt;
  }

  std::map<std::string, const json*> nodes_;
  std::map<int64_t, UiLink> links_;
};

json convert_ui(const json& ui, const NodeRegistry& registry);

}  // namespace

json widget_values_by_input(const json& node, const NodeSchema& schema) {
  json inputs = json::object();
  auto it = node.find("widgets_values");
  if (it == node.end() || it->is_null()) return inputs;
  const json& values = *it;
  if (values.is_object()) {  // some frontends store {input_id: value}
    for (const Input* input : schema.ordered_inputs()) {
      if (input->is_widget() && values.contains(input->id())) {
        inputs[input->id()] = values[input->id()];
      }
    }
    return inputs;
  }
  if (!values.is_array()) return inputs;
  size_t index = 0;
  for (const Input* input : schema.ordered_inputs()) {
    if (!input->is_widget()) continue;
    if (index >= values.size()) break;
    inputs[input->id()] = values[index++];
    if (input->has_control_after_generate()) ++index;  // "fixed" / "randomize" / ...
    // The frontend's upload button of LoadImage / LoadVideo stores "image" after the file name.
    if (!input->upload_kind().empty() && index < values.size() && values[index].is_string() &&
        (values[index] == "image" || values[index] == "video"))
      ++index;
  }
  if (index < values.size()) {
    spdlog::debug("workflow: node {} ({}) has {} widget values, {} used",
                  node.contains("id") ? node["id"].dump() : "?", schema.name(), values.size(), index);
  }
  return inputs;
}

bool is_api_prompt(const json& workflow) {
  const json& nodes = api_nodes(workflow);
  if (!nodes.is_object() || nodes.empty()) return false;
  for (const auto& [id, node] : nodes.items()) {
    if (!node.is_object() || !node.contains("class_type")) return false;
  }
  return true;
}

bool is_ui_workflow(const json& workflow) {
  return workflow.is_object() && workflow.contains("nodes") && workflow["nodes"].is_array();
}

json ui_to_api(const json& ui, const NodeRegistry& registry) {
  if (!is_ui_workflow(ui)) throw ValidationError("workflow: not a UI workflow (no 'nodes' array)");
  try {
    return convert_ui(expand_group_nodes(flatten_subgraphs(ui), registry), registry);
  } catch (const json::exception& e) {
    // A field of the wrong JSON type somewhere in the workflow.
    throw ValidationError(std::string("workflow: malformed UI workflow: ") + e.what());
  }
}

namespace {

json convert_ui(const json& ui, const NodeRegistry& registry) {
  UiGraph graph(ui);
  json prompt = json::object();
  for (const auto& [id, node_ptr] : graph.nodes()) {
    const json& node = *node_ptr;
    const std::string type = node.value("type", "");
    const int mode = node.value("mode", 0);
    if (is_frontend_only(type) || mode == kModeMuted || mode == kModeBypassed) continue;

    json inputs = json::object();
    const NodeSchema* schema = registry.find(type);
    if (schema) inputs = widget_values_by_input(node, *schema);
    // Links win over widget values: a widget converted to an input keeps a stale value.
    for (const auto& input : node.value("inputs", json::array())) {
      if (!input.contains("link") || input["link"].is_null()) continue;
      std::string name = input.value("name", "");
      if (input.contains("widget") && input["widget"].is_object()) {
        name = input["widget"].value("name", name);
      }
      Source source =
          graph.resolve(id, name, integer_field(input["link"], "input link"), input.value("type", ""));
      if (source.kind == Source::Kind::kLink) {
        inputs[name] = json::array({source.node, source.slot});
      } else if (source.kind == Source::Kind::kLiteral) {
        inputs[name] = source.literal;
      }
    }

    json api = {{"class_type", type}, {"inputs", inputs}};
    std::string title = node.value("title", "");
    if (title.empty()) title = schema ? schema->display_name() : type;
    api["_meta"] = {{"title", title}};
    prompt[id] = api;
  }
  return prompt;
}

}  // namespace

json to_api_prompt(const json& workflow, const NodeRegistry& registry) {
  if (is_ui_workflow(workflow)) return ui_to_api(workflow, registry);
  if (is_api_prompt(workflow)) return api_nodes(workflow);
  throw ValidationError(
      "workflow: neither an API prompt ({\"id\": {\"class_type\", \"inputs\"}}) nor a UI "
      "workflow ({\"nodes\", \"links\"})");
}

std::string read_workflow_text(const fs::path& path) {
  try {
    return io::read_regular_file(path.string(), JsonLimits{}.max_bytes);
  } catch (const LoadError& e) {
    throw ValidationError("workflow " + printable(e.what(), 600));
  }
}

json parse_workflow_text(const std::string& text, const fs::path& path) {
  return parse_json_bounded(text, "workflow '" + path.string() + "'", JsonLimits{});
}

json read_json_file(const fs::path& path) {
  return parse_workflow_text(read_workflow_text(path), path);
}

namespace {

// A node's class_type when it is a string, else "" (the validator names such a node).
std::string class_type_of(const json& node) {
  if (!node.is_object()) return "";
  const auto it = node.find("class_type");
  return it != node.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string resolve_target(const json& prompt, const std::string& target,
                           const std::string& assignment) {
  if (prompt.contains(target)) return target;
  std::vector<std::string> by_title, by_class;
  for (const auto& id : sorted_node_ids(prompt)) {
    const json& node = prompt[id];
    if (node_title(node) == target) by_title.push_back(id);
    if (class_type_of(node) == target) by_class.push_back(id);
  }
  auto list = [](const std::vector<std::string>& ids) {
    std::string text;
    for (const auto& id : ids) text += (text.empty() ? "" : ", ") + id;
    return text;
  };
  if (by_title.size() == 1) return by_title[0];
  if (by_title.size() > 1) {
    throw ValidationError("--set '" + assignment + "': title '" + target + "' is used by nodes " +
                          list(by_title) + "; use a node id");
  }
  if (by_class.size() == 1) return by_class[0];
  if (by_class.size() > 1) {
    throw ValidationError("--set '" + assignment + "': class_type '" + target +
                          "' occurs in nodes " + list(by_class) + "; use a node id or a title");
  }
  throw ValidationError("--set '" + assignment + "': no node has the id, title or class_type '" +
                        target + "'");
}

json parse_override_value(const std::string& text, const Input& input,
                          const std::string& assignment) {
  auto fail = [&](const std::string& what) -> ValidationError {
    return ValidationError("--set '" + printable(assignment) + "': '" + printable(text, 80) +
                           "' is not " + what +
                           " (input '" + input.id() + "' is " + input.type() + ")");
  };
  const std::string& type = input.type();
  if (type == kInt) {
    errno = 0;
    char* end = nullptr;
    const long long value = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno == ERANGE) throw fail("an integer");
    return static_cast<int64_t>(value);
  }
  if (type == kFloat) {
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(value)) throw fail("a finite number");
    return value;
  }
  if (type == kBoolean) {
    if (text == "true" || text == "1") return true;
    if (text == "false" || text == "0") return false;
    throw fail("true, false, 1 or 0");
  }
  return text;  // STRING, COMBO
}

}  // namespace

void apply_override(json& prompt, const std::string& assignment, const NodeRegistry& registry) {
  if (const size_t bad = find_invalid_utf8(assignment); bad != std::string::npos)
    throw ValidationError("--set '" + printable(assignment) + "': invalid UTF-8 at byte " +
                          std::to_string(bad));
  if (assignment.size() > JsonLimits{}.max_string_bytes)
    throw ValidationError("--set: a value of " + std::to_string(assignment.size()) +
                          " bytes is longer than the limit of " +
                          std::to_string(JsonLimits{}.max_string_bytes));
  const size_t eq = assignment.find('=');
  const size_t dot = eq == std::string::npos ? std::string::npos : assignment.rfind('.', eq);
  if (eq == std::string::npos || dot == std::string::npos || dot == 0 || dot + 1 == eq) {
    throw ValidationError("--set '" + assignment + "': expected TARGET.INPUT=VALUE");
  }
  const std::string target = assignment.substr(0, dot);
  const std::string input_name = assignment.substr(dot + 1, eq - dot - 1);
  const std::string text = assignment.substr(eq + 1);

  if (!prompt.is_object())
    throw ValidationError("--set '" + printable(assignment) + "': the prompt is not a JSON object");
  const std::string id = resolve_target(prompt, target, assignment);
  json& node = prompt[id];
  const std::string class_type = class_type_of(node);
  const NodeSchema* schema = registry.find(class_type);
  if (!schema) {
    throw ValidationError("--set '" + assignment + "': node " + id + " has the unknown type '" +
                          class_type + "'");
  }
  const Input* input = schema->find_input(input_name);
  if (!input) {
    std::string names;
    for (const Input* candidate : schema->ordered_inputs()) {
      if (candidate->is_widget()) names += (names.empty() ? "" : ", ") + candidate->id();
    }
    throw ValidationError("--set '" + assignment + "': " + class_type + " (node " + id +
                          ") has no input '" + input_name + "'; its widget inputs are: " + names);
  }
  if (!input->is_widget()) {
    throw ValidationError("--set '" + assignment + "': input '" + input_name + "' of " +
                          class_type + " (node " + id + ") is a " + input->type() +
                          " socket; --set only sets widget values");
  }
  if (node.contains("inputs") && !node["inputs"].is_object())
    throw ValidationError("--set '" + printable(assignment) + "': node " + id +
                          " has \"inputs\" that is not an object");
  node["inputs"][input_name] = parse_override_value(text, *input, assignment);
}

bool node_id_less(const std::string& a, const std::string& b) {
  auto numeric = [](const std::string& s) {
    return !s.empty() && s.size() < 19 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  const bool na = numeric(a), nb = numeric(b);
  if (na && nb) return std::stoll(a) < std::stoll(b) || (std::stoll(a) == std::stoll(b) && a < b);
  if (na != nb) return na;
  return a < b;
}

std::vector<std::string> sorted_node_ids(const json& prompt) {
  std::vector<std::string> ids;
  for (const auto& [id, node] : prompt.items()) ids.push_back(id);
  std::sort(ids.begin(), ids.end(), node_id_less);
  return ids;
}

bool parse_link(const json& value, std::string* node_id, int64_t* output_index) {
  if (!value.is_array() || value.size() != 2) return false;
  if (value[0].is_string()) {
    *node_id = value[0].get<std::string>();
  } else if (value[0].is_number_integer()) {
    *node_id = std::to_string(value[0].get<int64_t>());
  } else {
    return false;
  }
  if (!value[1].is_number_integer()) return false;
  *output_index = value[1].get<int64_t>();
  return true;
}

std::string node_title(const json& node) {
  if (!node.is_object() || !node.contains("_meta") || !node["_meta"].is_object()) return "";
  const json& meta = node["_meta"];
  return meta.contains("title") && meta["title"].is_string() ? meta["title"].get<std::string>()
                                                             : "";
}

nlohmann::ordered_json in_order_of(const json& value, const nlohmann::ordered_json& order) {
  if (value.is_object()) {
    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    const bool ordered = order.is_object();
    if (ordered)
      for (const auto& [key, original] : order.items())
        if (value.contains(key)) out[key] = in_order_of(value[key], original);
    for (const auto& [key, item] : value.items())
      if (!ordered || !order.contains(key)) out[key] = in_order_of(item, nullptr);
    return out;
  }
  if (value.is_array()) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (size_t i = 0; i < value.size(); ++i)
      out.push_back(in_order_of(value[i], order.is_array() && i < order.size() ? order[i] : nullptr));
    return out;
  }
  switch (value.type()) {  // scalars convert directly (no text round trip: prompts can be huge)
    case json::value_t::string: return value.get_ref<const std::string&>();
    case json::value_t::boolean: return value.get<bool>();
    case json::value_t::number_integer: return value.get<int64_t>();
    case json::value_t::number_unsigned: return value.get<uint64_t>();
    case json::value_t::number_float: return value.get<double>();
    default: return nullptr;
  }
}

}  // namespace wan::graph
