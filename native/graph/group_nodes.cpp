#include "graph/group_nodes.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "graph/workflow_json.h"

namespace wan::graph {

using nlohmann::json;

namespace {

constexpr const char* kPrefixNew = "workflow>";
constexpr const char* kPrefixOld = "workflow/";
// The frontend adds an upload button input after a combo that takes uploads (LoadImage.image).
constexpr const char* kUploadWidget = "upload";

std::optional<std::string> group_name(const json& node) {
  if (!node.is_object() || !node.contains("type") || !node["type"].is_string()) return std::nullopt;
  const std::string type = node["type"].get<std::string>();
  for (const char* prefix : {kPrefixNew, kPrefixOld}) {
    const std::string p = prefix;
    if (type.rfind(p, 0) == 0) return type.substr(p.size());
  }
  return std::nullopt;
}

std::string id_text(const json& id) {
  if (id.is_string()) return id.get<std::string>();
  if (id.is_number_integer()) return std::to_string(id.get<int64_t>());
  throw ValidationError("workflow: node id " + id.dump() + " is neither a number nor a string");
}

int64_t integer(const json& value, const std::string& what) {
  if (!value.is_number_integer())
    throw ValidationError("workflow: " + what + " " + value.dump().substr(0, 40) + " is not an integer");
  return value.get<int64_t>();
}

// One widget value of the instance: which inner input it sets.
struct WidgetSlot {
  size_t node = 0;
  std::string input;
  bool control = false;  // followed by a control_after_generate value
};

struct InnerSlot {
  size_t node = 0;
  int64_t slot = 0;
};

// How the frontend lays an instance out for one group definition (GroupNodeConfig): which
// instance input feeds which inner input, which inner output each instance output exposes, and
// which inner widget each instance widget value sets.
struct GroupLayout {
  std::vector<const json*> nodes;
  std::vector<const NodeSchema*> schemas;
  // Internal links by target: (inner node, slot) -> (origin inner node, origin slot).
  std::map<std::pair<size_t, int64_t>, InnerSlot> internal;
  std::map<std::pair<size_t, int64_t>, int64_t> instance_input;  // inner input -> instance slot
  std::vector<InnerSlot> outputs;                                 // instance output -> inner
  std::vector<WidgetSlot> widgets;                                // instance widget values
};

const json* config_entry(const json& definition, size_t node, const char* kind,
                         const std::string& key) {
  auto config = definition.find("config");
  if (config == definition.end() || !config->is_object()) return nullptr;
  auto entry = config->find(std::to_string(node));
  if (entry == config->end() || !entry->is_object()) return nullptr;
  auto section = entry->find(kind);
  if (section == entry->end() || !section->is_object()) return nullptr;
  auto item = section->find(key);
  return item == section->end() ? nullptr : &*item;
}

bool hidden_by_config(const json* entry) {
  return entry && entry->is_object() && entry->contains("visible") && (*entry)["visible"] == false;
}

GroupLayout build_layout(const std::string& name, const json& definition,
                         const NodeRegistry& registry) {
  const std::string where = "workflow: group node '" + name + "'";
  if (!definition.is_object() || !definition.contains("nodes") || !definition["nodes"].is_array())
    throw ValidationError(where + ": extra.groupNodes has no 'nodes' list for it");
  GroupLayout layout;
  for (const auto& node : definition["nodes"]) {
    if (!node.is_object() || !node.contains("type") || !node["type"].is_string())
      throw ValidationError(where + ": an inner node has no type");
    const std::string type = node["type"].get<std::string>();
    if (type == "Reroute" || type == "PrimitiveNode")
      throw ValidationError(where + " contains a " + type +
                            ", which this reader does not expand; convert the group node back to "
                            "nodes in the editor (Ungroup) and save the workflow again");
    const NodeSchema* schema = registry.find(type);
    if (!schema) throw ValidationError(where + " contains node type '" + type + "', which this build does not have");
    layout.nodes.push_back(&node);
    layout.schemas.push_back(schema);
  }

  std::map<std::pair<size_t, int64_t>, bool> linked_out;  // inner output used inside
  std::map<std::pair<size_t, int64_t>, bool> external;    // inner output used outside
  const json links = definition.value("links", json::array());
  for (const auto& l : links.is_array() ? links : json::array()) {
    if (!l.is_array() || l.size() < 4) throw ValidationError(where + ": malformed link " + l.dump().substr(0, 100));
    // An origin of null is a node outside the group: that input becomes an instance input.
    if (l[0].is_null()) continue;
    const int64_t origin = integer(l[0], "group link origin"), target = integer(l[2], "group link target");
    const size_t count = layout.nodes.size();
    if (origin < 0 || target < 0 || static_cast<size_t>(origin) >= count ||
        static_cast<size_t>(target) >= count)
      throw ValidationError(where + ": link " + l.dump().substr(0, 100) + " names an inner node it does not have");
    const int64_t origin_slot = integer(l[1], "group link slot"), target_slot = integer(l[3], "group link slot");
    layout.internal[{static_cast<size_t>(target), target_slot}] = {static_cast<size_t>(origin), origin_slot};
    linked_out[{static_cast<size_t>(origin), origin_slot}] = true;
  }
  const json ext = definition.value("external", json::array());
  for (const auto& e : ext.is_array() ? ext : json::array()) {
    if (e.is_array() && e.size() >= 2 && e[0].is_number_integer() && e[1].is_number_integer())
      external[{e[0].get<size_t>(), e[1].get<int64_t>()}] = true;
  }

  // Frontends since 1.16 save a slot for every widget of every node; in a group saved so, a
  // widget without a slot is an input its node gained after the group was made, and the instance
  // holds no value for it (it keeps its default). Older files have slots only for widgets
  // converted to inputs.
  bool every_widget_has_slot = false;
  for (const json* node : layout.nodes)
    for (const auto& in : node->value("inputs", json::array()))
      every_widget_has_slot = every_widget_has_slot || (in.is_object() && in.contains("widget"));

  // Widget inputs the instance exposes as sockets come after every inner node's own inputs.
  struct Converted {
    size_t node;
    size_t sockets;  // socket inputs of that node (the frontend indexes converted ones after them)
    std::vector<std::pair<int64_t, std::string>> slots;  // (inner slot, input)
  };
  std::vector<Converted> converted;
  int64_t next_input = 0;
  for (size_t i = 0; i < layout.nodes.size(); ++i) {
    const json& node = *layout.nodes[i];
    const NodeSchema& schema = *layout.schemas[i];
    const json inputs = node.value("inputs", json::array());
    auto widget_slot = [&](const std::string& id) -> std::optional<int64_t> {
      for (size_t s = 0; s < inputs.size(); ++s) {
        const json& in = inputs[s];
        if (in.is_object() && in.value("name", "") == id && in.contains("widget") &&
            in["widget"].is_object() && in["widget"].value("name", "") == id)
          return static_cast<int64_t>(s);
      }
      return std::nullopt;
    };
    Converted node_converted{i, 0, {}};
    std::vector<std::string> sockets;
    auto add_widget = [&](const std::string& id, bool control) {
      if (auto slot = widget_slot(id)) {
        node_converted.slots.push_back({*slot, id});
      } else if (!every_widget_has_slot) {
        layout.widgets.push_back({i, id, control});
      }
    };
    for (const Input* input : schema.ordered_inputs()) {
      if (!input->is_widget()) {
        sockets.push_back(input->id());
        continue;
      }
      add_widget(input->id(), input->has_control_after_generate() || input->id() == "seed" ||
                                  input->id() == "noise_seed");
      if (!input->upload_kind().empty()) add_widget(kUploadWidget, false);
    }
    for (size_t k = 0; k < sockets.size(); ++k) {
      const auto key = std::make_pair(i, static_cast<int64_t>(k));
      if (layout.internal.count(key)) continue;
      if (hidden_by_config(config_entry(definition, i, "input", sockets[k]))) continue;
      layout.instance_input[key] = next_input++;
    }
    node_converted.sockets = sockets.size();
    converted.push_back(std::move(node_converted));

    for (size_t o = 0; o < schema.outputs().size(); ++o) {
      const auto key = std::make_pair(i, static_cast<int64_t>(o));
      const bool used_inside_only = linked_out.count(key) && !external.count(key);
      const json* entry = config_entry(definition, i, "output", std::to_string(o));
      bool visible = !used_inside_only;
      if (entry && entry->is_object() && entry->contains("visible") && (*entry)["visible"].is_boolean())
        visible = (*entry)["visible"].get<bool>();
      if (visible) layout.outputs.push_back({i, static_cast<int64_t>(o)});
    }
  }
  for (auto& node : converted) {
    // The frontend orders them by the text of their slot index ("10" before "4"); its instance
    // inputs and widget values follow that order, so reading them back must too.
    std::sort(node.slots.begin(), node.slots.end(), [](const auto& a, const auto& b) {
      return std::to_string(a.first) < std::to_string(b.first);
    });
    for (size_t k = 0; k < node.slots.size(); ++k) {
      const auto [slot, id] = node.slots[k];
      if (layout.internal.count({node.node, static_cast<int64_t>(node.sockets + k)})) continue;
      const Input* input = layout.schemas[node.node]->find_input(id);
      const bool control = input && (input->has_control_after_generate() || id == "seed" || id == "noise_seed");
      layout.widgets.push_back({node.node, id, control});
      layout.instance_input[{node.node, slot}] = next_input++;
    }
  }
  return layout;
}

struct LinkRecord {
  json origin;
  int64_t origin_slot = 0;
  json target;
  int64_t target_slot = 0;
  json type;
};

}  // namespace

json expand_group_nodes(const json& ui, const NodeRegistry& registry) {
  const json* groups = nullptr;
  if (ui.contains("extra") && ui["extra"].is_object()) {
    auto it = ui["extra"].find("groupNodes");
    if (it != ui["extra"].end() && it->is_object() && !it->empty()) groups = &*it;
  }
  bool any = false;
  for (const auto& node : ui["nodes"]) any = any || group_name(node).has_value();
  if (!any) return ui;

  // Links, normalised to records by id; instance inputs are read from here.
  std::map<int64_t, LinkRecord> links;
  if (ui.contains("links") && ui["links"].is_array()) {
    for (const auto& l : ui["links"]) {
      if (l.is_array() && l.size() >= 5) {
        links[integer(l[0], "link id")] = {l[1], integer(l[2], "link slot"), l[3],
                                           integer(l[4], "link slot"), l.size() > 5 ? l[5] : json("*")};
      } else if (l.is_object() && l.contains("id") && l.contains("origin_id")) {
        links[integer(l["id"], "link id")] = {l["origin_id"], integer(l.value("origin_slot", json(0)), "link slot"),
                                              l.value("target_id", json()),
                                              integer(l.value("target_slot", json(0)), "link slot"),
                                              l.value("type", json("*"))};
      } else {
        throw ValidationError("workflow: malformed link " + l.dump().substr(0, 200));
      }
    }
  }
  int64_t next_link = links.empty() ? 1 : links.rbegin()->first + 1;

  std::map<std::string, GroupLayout> layouts;
  // (instance id, instance output slot) -> (inner node id, slot), applied to every link at the end.
  std::map<std::pair<std::string, int64_t>, std::pair<std::string, int64_t>> moved_outputs;
  json nodes = json::array();
  for (const auto& node : ui["nodes"]) {
    const auto name = group_name(node);
    if (!name) {
      nodes.push_back(node);
      continue;
    }
    const std::string instance = id_text(node.at("id"));
    if (!groups || !groups->contains(*name))
      throw ValidationError("workflow: node " + instance + " is an instance of group node '" + *name +
                            "', which the workflow's extra.groupNodes does not define");
    auto layout_it = layouts.find(*name);
    if (layout_it == layouts.end())
      layout_it = layouts.emplace(*name, build_layout(*name, (*groups)[*name], registry)).first;
    const GroupLayout& layout = layout_it->second;
    const std::string prefix = instance + ":";

    // Instance widget values, per inner node, by input.
    std::vector<json> overrides(layout.nodes.size(), json::object());
    const json values = node.value("widgets_values", json::array());
    if (values.is_array()) {
      size_t v = 0;
      for (const WidgetSlot& w : layout.widgets) {
        if (v >= values.size()) break;
        if (w.input != kUploadWidget) overrides[w.node][w.input] = values[v];
        v += w.control ? 2 : 1;
      }
    }
    const json instance_inputs = node.value("inputs", json::array());
    const int mode = node.value("mode", 0);

    for (size_t i = 0; i < layout.nodes.size(); ++i) {
      json inner = *layout.nodes[i];
      inner.erase("index");
      const std::string inner_id = prefix + std::to_string(i);
      inner["id"] = inner_id;
      if (mode != 0) inner["mode"] = mode;
      json widgets = widget_values_by_input(inner, *layout.schemas[i]);
      for (const auto& [key, value] : overrides[i].items()) widgets[key] = value;
      inner["widgets_values"] = widgets;
      json inputs = inner.value("inputs", json::array());
      for (size_t s = 0; s < inputs.size(); ++s) {
        if (!inputs[s].is_object()) continue;
        inputs[s]["link"] = nullptr;
        const auto key = std::make_pair(i, static_cast<int64_t>(s));
        if (auto in = layout.internal.find(key); in != layout.internal.end()) {
          links[next_link] = {prefix + std::to_string(in->second.node), in->second.slot, inner_id,
                              static_cast<int64_t>(s), inputs[s].value("type", json("*"))};
          inputs[s]["link"] = next_link++;
        } else if (auto ext = layout.instance_input.find(key); ext != layout.instance_input.end()) {
          const size_t j = static_cast<size_t>(ext->second);
          if (j >= instance_inputs.size() || !instance_inputs[j].is_object()) continue;
          const json& link = instance_inputs[j].value("link", json());
          if (link.is_null()) continue;
          auto outer = links.find(integer(link, "input link"));
          if (outer == links.end())
            throw ValidationError("workflow: node " + instance + " input " + std::to_string(j) +
                                  " uses link " + link.dump() + ", which is not in 'links'");
          LinkRecord moved = outer->second;
          moved.target = inner_id;
          moved.target_slot = static_cast<int64_t>(s);
          links[next_link] = moved;
          inputs[s]["link"] = next_link++;
        }
      }
      inner["inputs"] = inputs;
      nodes.push_back(inner);
    }
    for (size_t o = 0; o < layout.outputs.size(); ++o) {
      moved_outputs[{instance, static_cast<int64_t>(o)}] = {
          prefix + std::to_string(layout.outputs[o].node), layout.outputs[o].slot};
    }
  }

  json out = ui;
  out["nodes"] = nodes;
  json link_list = json::array();
  for (auto& [id, link] : links) {
    if (auto m = moved_outputs.find({id_text(link.origin), link.origin_slot}); m != moved_outputs.end()) {
      link.origin = m->second.first;
      link.origin_slot = m->second.second;
    }
    link_list.push_back(json::array({id, link.origin, link.origin_slot, link.target, link.target_slot, link.type}));
  }
  out["links"] = link_list;
  out["extra"].erase("groupNodes");
  return out;
}

}  // namespace wan::graph
