// The node pack: every node class, registered explicitly (ComfyUI's NODE_CLASS_MAPPINGS), so a
// front end chooses its registry and nothing depends on static initialisation order.
#pragma once
#include "graph/node_registry.h"

namespace wan::nodes {

// Adds every node class of nodes/ to `registry`; throws std::invalid_argument when one is
// already there.
void register_wan_nodes(graph::NodeRegistry& registry);

// A process-wide registry holding every node class, made on first use (thread-safe).
const graph::NodeRegistry& wan_node_registry();

}  // namespace wan::nodes
