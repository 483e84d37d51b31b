// The order a validated API prompt's nodes run in, shared by the executor and the memory planner
// so that a plan's timeline is the run's.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "graph/node_registry.h"

namespace wan::graph {

// The ancestors of `outputs`, each once and after everything it reads: depth first from each
// output in turn (one output's chain completes before the next starts), linked inputs visited in
// schema order. The prompt must be valid (no cycles, known class_types).
std::vector<std::string> execution_order(const nlohmann::json& prompt, const NodeRegistry& registry,
                                         const std::vector<std::string>& outputs);

}  // namespace wan::graph
