// ComfyUI frontend subgraphs in UI workflows: `definitions.subgraphs` holds reusable graphs, and a
// node whose `type` is a subgraph's id is an instance of it. The backend never sees them: the
// frontend's graphToPrompt inlines every instance, naming an inner node "<instance>:<inner>"
// (nested: "a:b:c"). flatten_subgraphs does the same on the UI level, so the UI reader needs no
// notion of subgraphs.
#pragma once
#include <nlohmann/json.hpp>

namespace wan::graph {

// How deep subgraphs may nest inside each other.
inline constexpr int kMaxSubgraphDepth = 32;

// A UI workflow without subgraph instances: each instance replaced by its inner nodes (ids
// "<instance>:<inner>"), links through the subgraph's input (-10) and output (-20) nodes joined
// to the links outside, links renumbered. A workflow without `definitions.subgraphs` is returned
// as is. Throws ValidationError for an instance loop, too deep nesting, or a malformed link.
nlohmann::json flatten_subgraphs(const nlohmann::json& ui);

}  // namespace wan::graph
