// A validated API prompt as the executor and the memory planner consume it, built once by the
// validator: the nodes the outputs need, in execution order, each with its schema, its literals
// converted per that schema (defaults filled in) and its links resolved. Neither consumer reads
// the prompt's JSON for inputs again.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "graph/node_registry.h"

namespace wan::graph {

struct GraphLink {
  std::string node_id;  // the upstream node
  int64_t output = 0;   // its output index
};

struct GraphNode {
  std::string id, class_type;
  std::string title;  // _meta.title, "" when none
  const NodeSchema* schema = nullptr;
  Values literals;                         // widget inputs, converted; defaults for absent ones
  std::map<std::string, GraphLink> links;  // socket (or linked widget) input -> its source
};

using TypedGraph = std::vector<GraphNode>;

// The typed graph of `prompt` towards `outputs` (graph::execution_order). The prompt's structure
// must be valid (known class_types, no cycles); a literal its schema refuses throws
// ValidationError naming the node and the input.
TypedGraph typed_graph(const nlohmann::json& prompt, const NodeRegistry& registry,
                       const std::vector<std::string>& outputs);

}  // namespace wan::graph
