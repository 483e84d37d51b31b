// ComfyUI's legacy group nodes in UI workflows. `extra.groupNodes.NAME` holds the copied nodes
// of a group ({nodes, links, external, config}), and a node whose type is "workflow>NAME" (older
// files: "workflow/NAME") is an instance of it. The frontend never sends group nodes to the
// backend: it queues their inner nodes as "<instance>:<index>". expand_group_nodes does the same
// on the UI level, so the UI reader needs no notion of group nodes.
#pragma once
#include <nlohmann/json.hpp>

#include "graph/node_registry.h"

namespace wan::graph {

// A UI workflow without group-node instances: each one replaced by its inner nodes, with the
// instance's widget values and input links given to the inner inputs they stand for and the
// links from its outputs moved to the inner outputs they expose. The instance's inputs, outputs
// and widget values are laid out as the frontend builds them from the inner nodes' schemas, so
// `registry` must know every inner node type. A workflow without `extra.groupNodes` is returned
// as is. Throws ValidationError naming the instance for an undefined group, an inner node type
// the registry lacks, or an inner Reroute/PrimitiveNode (not supported: ungroup it).
nlohmann::json expand_group_nodes(const nlohmann::json& ui, const NodeRegistry& registry);

}  // namespace wan::graph
