// ComfyUI's two workflow formats, read into one: the API prompt.
//
// API prompt:  {"3": {"class_type": "Sample", "inputs": {"seed": 42, "dit": ["1", 0]},
//                     "_meta": {"title": "Sample"}}, ...}
// UI workflow: {"nodes": [{"id", "type", "mode", "inputs", "outputs", "widgets_values", "title"}],
//               "links": [[id, from_node, from_slot, to_node, to_slot, type], ...], "groups", ...}
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "graph/node_registry.h"

namespace wan::graph {

// {"id": {"class_type": ...}, ...}, possibly wrapped as {"prompt": {...}} (a /prompt request).
bool is_api_prompt(const nlohmann::json& workflow);
// Has a "nodes" array (and "links").
bool is_ui_workflow(const nlohmann::json& workflow);

// Converts a UI workflow as ComfyUI's frontend does before queueing it (graphToPrompt):
// - widgets_values fill the schema's widget inputs, required then optional, skipping the extra
//   control_after_generate value after an input that declares it (an object maps by name);
// - muted nodes (mode 2) are dropped, with their outgoing links;
// - a bypassed node (mode 4) is dropped and passes on its input of the linked output's type;
// - Reroute forwards its input link, PrimitiveNode becomes the literal it holds, Note and
//   MarkdownNote are dropped, groups are ignored;
// - a node's "title" becomes _meta.title;
// - subgraph instances (graph/subgraphs.h) and legacy group nodes (graph/group_nodes.h) become
//   their inner nodes, ids "<instance>:<inner>".
// Throws ValidationError for a malformed workflow (a link id that is not in "links", ...).
// Unknown node types are kept with their links, for the validator to report.
nlohmann::json ui_to_api(const nlohmann::json& ui, const NodeRegistry& registry);

// The widget inputs a UI node's widgets_values set, by input id, laid out as ui_to_api reads
// them (an object form maps by name).
nlohmann::json widget_values_by_input(const nlohmann::json& node, const NodeSchema& schema);

// Either format -> API prompt. Throws ValidationError when it is neither.
nlohmann::json to_api_prompt(const nlohmann::json& workflow, const NodeRegistry& registry);

// Parses a JSON file; throws ValidationError naming the file and what is wrong.
nlohmann::json read_json_file(const std::filesystem::path& path);
// The two halves of read_json_file, for a caller that also needs the text (e.g. to parse it a
// second time with its keys in file order, nlohmann::ordered_json, once the limits passed).
std::string read_workflow_text(const std::filesystem::path& path);
nlohmann::json parse_workflow_text(const std::string& text, const std::filesystem::path& path);
// `value` with the key order of `order` wherever the two share keys (keys only in `value` come
// after, in its order): a prompt changed by --set keeps the order of the file it came from.
nlohmann::ordered_json in_order_of(const nlohmann::json& value, const nlohmann::ordered_json& order);

// Applies the runner's `--set TARGET.INPUT=VALUE` to an API prompt. TARGET is a node id, a
// _meta.title, or a class_type occurring once; VALUE is parsed per the input's schema type
// (INT, FLOAT, BOOLEAN true/false/1/0, STRING and COMBO as is). Throws ValidationError naming the
// assignment when the target is unknown or ambiguous, the input does not exist or is a socket, or
// the value does not parse.
void apply_override(nlohmann::json& prompt, const std::string& assignment,
                    const NodeRegistry& registry);

// --- API prompt helpers shared by the validator and the executor.

// Node ids in execution-friendly order: numeric ids by value, then the others by text.
bool node_id_less(const std::string& a, const std::string& b);
std::vector<std::string> sorted_node_ids(const nlohmann::json& prompt);
// A prompt input that is a list is a link attempt; a well-formed link is [node_id, output_index]
// with a string (or integer) id and an integer index. Returns false when malformed.
bool parse_link(const nlohmann::json& value, std::string* node_id, int64_t* output_index);
// _meta.title, or "" when there is none.
std::string node_title(const nlohmann::json& node);

}  // namespace wan::graph
