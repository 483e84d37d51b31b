// `placement: auto`: the planner chooses each such loader's placement for the whole graph, and
// the value of every input that asks for the planner's choice (graph::Input::planner_choice: a
// VAE node's tile_size -1).
//
// Every combination of the auto loaders' own placement values (their combo without "auto";
// LoadDiT's and LoadT5's include "stream") is planned. In each, the planner-chosen inputs start
// at their first candidate (untiled) and, while the plan runs out of memory in a node that has
// one, that node's input steps to its next candidate (a smaller tile). Among the combinations
// that fit the budget the choice computes the fewest models on the CPU, then moves the fewest
// bytes onto the device per run, then leaves the fewest models to move in again on every run,
// then steps the fewest inputs down, then has the lowest device peak. When none fits, the result
// says so and gives the smallest budget that would fit.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "graph/node_registry.h"
#include "plan/memory_plan.h"

namespace wan::plan {

// More auto loaders than this would make the search slow (choices^n plans); a graph that has
// more gets an error asking to fix some of them.
inline constexpr size_t kMaxAutoLoaders = 6;

struct AutoChoice {
  std::string node_id, class_type;
  std::string input;  // "placement", or a planner-chosen input ("tile_size")
  std::string value;  // the chosen placement, or the input's value as text
  std::string why;    // one line: what the better values would have done
};

struct AutoPlacement {
  nlohmann::json prompt;  // the prompt with every "auto" replaced by its choice
  // One per auto loader, then one per planner-chosen input, in node order; empty when none.
  std::vector<AutoChoice> choices;
  bool fits = true;
  PlanResult plan;                 // the chosen combination's plan
  int64_t smallest_budget = -1;    // when nothing fits: the least usable bytes that would fit
  std::string summary;             // the choices and their reasons, one line each
};

// Whether `api_prompt` has a loader placed `auto` or an input left to the planner.
bool has_auto_placement(const nlohmann::json& api_prompt, const graph::NodeRegistry& registry);

// Resolves the prompt's auto placements against `options.device` (its --vram budget, or the real
// device's free memory). A prompt without any is returned as is, with its plan. Throws
// graph::InvalidPrompt like plan_prompt, and ValidationError past kMaxAutoLoaders.
AutoPlacement resolve_auto_placement(const nlohmann::json& api_prompt,
                                     const graph::NodeRegistry& registry,
                                     const PlanOptions& options);

// The least --vram (card size, the reserve included) on which `api_prompt` fits as placed
// (no "auto" in it); -1 when it does not fit on any card (e.g. CPU memory runs out).
int64_t smallest_fitting_vram(const nlohmann::json& api_prompt, const graph::NodeRegistry& registry,
                              const PlanOptions& options);

}  // namespace wan::plan
