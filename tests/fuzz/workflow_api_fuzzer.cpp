// Fuzzes reading an API-format workflow: bounded parse, conversion to a prompt, --set overrides,
// node ordering and validation (with the typed graph a valid prompt yields). Any input is
// accepted or refused with ValidationError.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/bounded_json.h"
#include "core/error.h"
#include "graph/fake_nodes.h"
#include "graph/validator.h"
#include "graph/workflow_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const wan::graph::NodeRegistry registry = wan::graph::testing::make_registry();
  // The first line is a --set assignment, the rest the workflow.
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const std::string assignment = newline == std::string::npos ? "" : input.substr(0, newline);
  const std::string text = newline == std::string::npos ? input : input.substr(newline + 1);
  try {
    auto prompt = wan::graph::to_api_prompt(wan::parse_json_bounded(text, "fuzz"), registry);
    (void)wan::graph::sorted_node_ids(prompt);
    if (!assignment.empty()) wan::graph::apply_override(prompt, assignment, registry);
    (void)prompt.dump();
    const auto validation = wan::graph::validate_prompt(prompt, registry);
    if (validation.ok && validation.graph.empty()) __builtin_trap();  // outputs need nodes
    (void)validation.to_json().dump();
  } catch (const wan::ValidationError&) {
  }
  return 0;
}
