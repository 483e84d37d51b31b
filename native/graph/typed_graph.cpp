#include "graph/typed_graph.h"

#include "core/error.h"
#include "graph/execution_order.h"
#include "graph/validator.h"
#include "graph/workflow_json.h"

namespace wan::graph {

TypedGraph typed_graph(const nlohmann::json& prompt, const NodeRegistry& registry,
                       const std::vector<std::string>& outputs) {
  TypedGraph graph;
  const auto order = execution_order(prompt, registry, outputs);
  graph.reserve(order.size());
  for (const auto& id : order) {
    const nlohmann::json& node = prompt[id];
    GraphNode out;
    out.id = id;
    out.class_type = node["class_type"].get<std::string>();
    out.title = node_title(node);
    out.schema = &registry.schema(out.class_type);
    const nlohmann::json empty = nlohmann::json::object();
    const nlohmann::json& inputs = node.contains("inputs") ? node["inputs"] : empty;
    try {
      out.literals = literal_values(inputs, *out.schema);
    } catch (const ValidationError& e) {
      throw ValidationError(out.class_type + " (node " + id + "): " + e.what());
    }
    for (const Input& input : out.schema->inputs()) {
      auto it = inputs.find(input.id());
      GraphLink link;
      if (it != inputs.end() && parse_link(*it, &link.node_id, &link.output))
        out.links.emplace(input.id(), std::move(link));
    }
    graph.push_back(std::move(out));
  }
  return graph;
}

}  // namespace wan::graph
