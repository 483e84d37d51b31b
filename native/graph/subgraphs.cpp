#include "graph/subgraphs.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace wan::graph {

using nlohmann::json;

namespace {

constexpr int64_t kSubgraphInputNode = -10;
constexpr int64_t kSubgraphOutputNode = -20;

struct Link {
  json origin;  // node id as in the file (number or string)
  int64_t origin_slot = 0;
  json target;
  int64_t target_slot = 0;
  std::string type;
};

std::string id_text(const json& id) {
  if (id.is_string()) return id.get<std::string>();
  if (id.is_number_integer()) return std::to_string(id.get<int64_t>());
  throw ValidationError("workflow: node id " + id.dump() + " is neither a number nor a string");
}

// A link id or slot: a float such as 6e47 has no int64 value (converting it is undefined).
int64_t link_integer(const json& value) {
  if (!value.is_number_integer())
    throw ValidationError("workflow: link field " + value.dump().substr(0, 40) + " is not an integer");
  return value.get<int64_t>();
}

// Links as arrays [id, origin, origin_slot, target, target_slot, type] or objects.
std::map<int64_t, Link> read_links(const json& graph) {
  std::map<int64_t, Link> links;
  if (!graph.contains("links") || !graph["links"].is_array()) return links;
  for (const auto& l : graph["links"]) {
    Link link;
    int64_t id;
    if (l.is_array() && l.size() >= 5) {
      id = link_integer(l[0]);
      link = {l[1], link_integer(l[2]), l[3], link_integer(l[4]),
              l.size() > 5 && l[5].is_string() ? l[5].get<std::string>() : ""};
    } else if (l.is_object() && l.contains("id") && l.contains("origin_id")) {
      id = link_integer(l["id"]);
      link = {l["origin_id"], link_integer(l.value("origin_slot", json(0))), l.value("target_id", json()),
              link_integer(l.value("target_slot", json(0))), l.value("type", json("")).is_string() ? l.value("type", std::string()) : ""};
    } else {
      throw ValidationError("workflow: malformed link " + l.dump().substr(0, 200));
    }
    links[id] = link;
  }
  return links;
}

// One graph level: the top-level workflow or one subgraph instance's copy of its definition.
struct Level {
  const json* graph = nullptr;     // has "nodes" and "links"
  std::map<int64_t, Link> links;
  std::map<std::string, const json*> nodes;
  std::string prefix;              // "" at the top, "12:" inside instance 12, "12:5:" deeper
  const Level* parent = nullptr;
  const json* instance = nullptr;  // the instance node in the parent level
  int depth = 0;
};

class Flattener {
 public:
  explicit Flattener(const json& ui) {
    for (const auto& sg : ui["definitions"]["subgraphs"])
      if (sg.is_object() && sg.contains("id") && sg["id"].is_string())
        definitions_[sg["id"].get<std::string>()] = &sg;
  }

  json run(const json& ui) {
    Level top = make_level(ui, "", nullptr, nullptr, 0);
    emit(top);
    json out = ui;
    out["nodes"] = nodes_;
    out["links"] = links_;
    out.erase("definitions");
    out["last_link_id"] = next_link_ - 1;
    return out;
  }

 private:
  Level make_level(const json& graph, std::string prefix, const Level* parent,
                   const json* instance, int depth) {
    if (depth > kMaxSubgraphDepth)
      throw ValidationError("workflow: subgraphs nest deeper than " +
                            std::to_string(kMaxSubgraphDepth) + " levels (or contain themselves)");
    Level level;
    level.graph = &graph;
    level.links = read_links(graph);
    if (graph.contains("nodes") && graph["nodes"].is_array())
      for (const auto& node : graph["nodes"])
        if (node.is_object() && node.contains("id")) level.nodes[id_text(node["id"])] = &node;
    level.prefix = std::move(prefix);
    level.parent = parent;
    level.instance = instance;
    level.depth = depth;
    return level;
  }

  const json* definition_of(const json& node) const {
    if (!node.contains("type") || !node["type"].is_string()) return nullptr;
    auto it = definitions_.find(node["type"].get<std::string>());
    return it == definitions_.end() ? nullptr : it->second;
  }

  // Where the value on `link_id` of `level` comes from, as a flat node id and output slot;
  // nullopt when nothing feeds it (an unconnected subgraph input).
  std::optional<std::pair<std::string, int64_t>> resolve(const Level& level, int64_t link_id) {
    auto it = level.links.find(link_id);
    if (it == level.links.end()) return std::nullopt;  // the UI reader reports dangling links
    const Link& link = it->second;
    if (link.origin.is_number_integer() && link.origin.get<int64_t>() == kSubgraphInputNode) {
      if (!level.parent || !level.instance) return std::nullopt;
      const json inputs = level.instance->value("inputs", json::array());
      const json declared = level.graph->value("inputs", json::array());
      // The instance input of the same name as the subgraph input, else the same index.
      std::optional<int64_t> outer;
      const std::string name = link.origin_slot >= 0 &&
                                       link.origin_slot < static_cast<int64_t>(declared.size())
                                   ? declared[link.origin_slot].value("name", std::string())
                                   : std::string();
      for (const auto& input : inputs)
        if (!name.empty() && input.value("name", std::string()) == name && input.contains("link") &&
            input["link"].is_number_integer())
          outer = input["link"].get<int64_t>();
      if (!outer && link.origin_slot >= 0 && link.origin_slot < static_cast<int64_t>(inputs.size()) &&
          inputs[link.origin_slot].contains("link") && inputs[link.origin_slot]["link"].is_number_integer())
        outer = inputs[link.origin_slot]["link"].get<int64_t>();
      if (!outer) return std::nullopt;
      return resolve(*level.parent, *outer);
    }
    const std::string origin = id_text(link.origin);
    auto node = level.nodes.find(origin);
    if (node != level.nodes.end()) {
      if (const json* definition = definition_of(*node->second)) {
        // An output of an inner instance: follow the link into its output node.
        Level inner = make_level(*definition, level.prefix + origin + ":", &level, node->second,
                                 level.depth + 1);
        for (const auto& [id, inner_link] : inner.links)
          if (inner_link.target.is_number_integer() &&
              inner_link.target.get<int64_t>() == kSubgraphOutputNode &&
              inner_link.target_slot == link.origin_slot)
            return resolve(inner, id);
        return std::nullopt;
      }
    }
    return std::make_pair(level.prefix + origin, link.origin_slot);
  }

  void emit(const Level& level) {
    if (++emitted_levels_ > kMaxLevels)
      throw ValidationError("workflow: more than " + std::to_string(kMaxLevels) +
                            " subgraph instances");
    for (const auto& node_json : level.graph->value("nodes", json::array())) {
      if (!node_json.is_object() || !node_json.contains("id")) continue;
      const std::string id = id_text(node_json["id"]);
      if (const json* definition = definition_of(node_json)) {
        const int mode = node_json.value("mode", 0);
        if (mode == 2 || mode == 4) continue;  // a muted or bypassed instance runs nothing
        Level inner = make_level(*definition, level.prefix + id + ":", &level, &node_json,
                                 level.depth + 1);
        emit(inner);
        continue;
      }
      json node = node_json;
      node["id"] = level.prefix.empty() ? node_json["id"] : json(level.prefix + id);
      if (node.contains("inputs") && node["inputs"].is_array()) {
        for (size_t slot = 0; slot < node["inputs"].size(); ++slot) {
          json& input = node["inputs"][slot];
          if (!input.is_object() || !input.contains("link") || !input["link"].is_number_integer())
            continue;
          const auto source = resolve(level, input["link"].get<int64_t>());
          if (!source) {
            input["link"] = nullptr;
            continue;
          }
          const int64_t flat = next_link_++;
          links_.push_back(json::array({flat, source->first, source->second, node["id"],
                                        static_cast<int64_t>(slot), input.value("type", json(""))}));
          input["link"] = flat;
        }
      }
      nodes_.push_back(std::move(node));
    }
  }

  static constexpr int kMaxLevels = 100000;
  std::map<std::string, const json*> definitions_;
  json nodes_ = json::array(), links_ = json::array();
  int64_t next_link_ = 1;
  int emitted_levels_ = 0;
};

}  // namespace

json flatten_subgraphs(const json& ui) {
  if (!ui.is_object() || !ui.contains("definitions") || !ui["definitions"].is_object() ||
      !ui["definitions"].contains("subgraphs") || !ui["definitions"]["subgraphs"].is_array() ||
      ui["definitions"]["subgraphs"].empty())
    return ui;
  return Flattener(ui).run(ui);
}

}  // namespace wan::graph
