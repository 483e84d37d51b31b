#include "plan/auto_placement.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <set>
#include <tuple>

#include "core/error.h"
#include "device/placement.h"
#include "graph/workflow_json.h"

namespace wan::plan {

using nlohmann::json;

namespace {

// A card no graph fills, to find how much a graph needs.
constexpr int64_t kRoomyVram = int64_t{1} << 50;

struct AutoLoader {
  std::string node_id, class_type;
  std::vector<std::string> choices;  // the loader's placement combo without "auto"
};

std::vector<AutoLoader> auto_loaders(const json& prompt, const graph::NodeRegistry* registry) {
  std::vector<AutoLoader> out;
  if (!prompt.is_object()) return out;
  for (const auto& [id, node] : prompt.items()) {
    if (!node.is_object() || !node.contains("inputs") || !node["inputs"].is_object()) continue;
    const json& inputs = node["inputs"];
    auto it = inputs.find("placement");
    if (it == inputs.end() || !it->is_string() || *it != device::kAutoPlacement) continue;
    AutoLoader loader{id, node.value("class_type", std::string("?")), {}};
    // Each loader chooses among its own combo's values (LoadDiT's includes "stream").
    const graph::NodeSchema* schema = registry ? registry->find(loader.class_type) : nullptr;
    const graph::Input* input = schema ? schema->find_input("placement") : nullptr;
    for (const auto& option : input ? input->combo_options({}) : device::concrete_placement_choices())
      if (option != device::kAutoPlacement) loader.choices.push_back(option);
    out.push_back(std::move(loader));
  }
  std::sort(out.begin(), out.end(), [](const AutoLoader& a, const AutoLoader& b) {
    return graph::node_id_less(a.node_id, b.node_id);
  });
  return out;
}

// An input left to the planner (graph::Input::planner_choice), in node order.
struct AutoInput {
  std::string node_id, class_type, input;
  std::vector<json> candidates;  // in order of preference: integers, or a combo's options
  std::pair<std::string, std::string> when;  // graph::Input::planner_condition
  json unused_value;                         // the default, set while `when` does not hold
};

std::vector<AutoInput> auto_inputs(const json& prompt, const graph::NodeRegistry& registry) {
  std::vector<AutoInput> out;
  if (!prompt.is_object()) return out;
  for (const auto& [id, node] : prompt.items()) {
    if (!node.is_object() || !node.contains("inputs") || !node["inputs"].is_object()) continue;
    const graph::NodeSchema* schema = registry.find(node.value("class_type", std::string()));
    if (!schema) continue;
    for (const graph::Input& input : schema->inputs()) {
      if (!input.has_planner_choice()) continue;
      auto it = node["inputs"].find(input.id());
      if (it == node["inputs"].end() || *it != input.planner_auto_value()) continue;
      out.push_back({id, schema->name(), input.id(), input.planner_candidates(),
                     input.planner_condition(),
                     input.default_value().is_null() ? input.planner_candidates().front()
                                                     : input.default_value()});
    }
  }
  // Stable: one node's inputs keep their schema order, the order they step down in.
  std::stable_sort(out.begin(), out.end(), [](const AutoInput& a, const AutoInput& b) {
    return graph::node_id_less(a.node_id, b.node_id);
  });
  return out;
}

// "12" for an integer choice, "cpu" for a combo's.
std::string choice_text(const json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

struct Candidate {
  std::vector<std::string> placements;
  std::vector<size_t> steps;  // per auto input: the index of its chosen candidate
  PlanResult plan;
  int offloaded_models = 0;
  size_t steps_down() const {
    size_t n = 0;
    for (size_t s : steps) n += s;
    return n;
  }
};

// Whether `input`'s choice matters in `prompt` (its planner_choice_when holds).
bool applies(const json& prompt, const AutoInput& input) {
  if (input.when.first.empty()) return true;
  const json& inputs = prompt.at(input.node_id).at("inputs");
  auto it = inputs.find(input.when.first);
  return it != inputs.end() && it->is_string() && *it == input.when.second;
}

json with_inputs(json prompt, const std::vector<AutoInput>& inputs,
                 const std::vector<size_t>& steps) {
  for (size_t i = 0; i < inputs.size(); ++i)
    prompt[inputs[i].node_id]["inputs"][inputs[i].input] =
        applies(prompt, inputs[i]) ? inputs[i].candidates[steps[i]] : inputs[i].unused_value;
  return prompt;
}

// The first node a plan ran out of memory in; empty when it fits.
std::string failing_node(const PlanResult& plan) {
  for (const auto& n : plan.nodes)
    if (!n.ok) return n.node_id;
  return "";
}

// The nodes linked into `node_id`'s inputs.
std::set<std::string> upstream_of(const json& prompt, const std::string& node_id) {
  std::set<std::string> out;
  const auto node = prompt.find(node_id);
  if (node == prompt.end() || !node->is_object() || !node->contains("inputs")) return out;
  for (const auto& [name, value] : (*node)["inputs"].items())
    if (value.is_array() && value.size() == 2 && value[0].is_string())
      out.insert(value[0].get<std::string>());
  return out;
}

// Plans `prompt` with its planner-chosen inputs at their first candidates, stepping an input
// down its candidates until the plan fits or none is left to step: the input of the node that
// runs out of memory, or else one of a node linked into it (LoadDiT's resident_blocks when Sample
// runs out). Each candidate needs less memory than the one before it, so the first with which
// that node no longer runs out is found by bisection (a few plans, not one per candidate).
void plan_with_inputs(Candidate& c, const json& prompt, const std::vector<AutoInput>& inputs,
                      const graph::NodeRegistry& registry, const PlanOptions& options) {
  c.steps.assign(inputs.size(), 0);
  for (;;) {
    c.plan = plan_prompt(with_inputs(prompt, inputs, c.steps), registry, options);
    const std::string failed = failing_node(c.plan);
    if (failed.empty()) return;
    auto step_one = [&](const std::function<bool(const std::string&)>& of_node) {
      for (size_t i = 0; i < inputs.size(); ++i) {
        if (!of_node(inputs[i].node_id) || c.steps[i] + 1 >= inputs[i].candidates.size() ||
            !applies(prompt, inputs[i]))
          continue;
        size_t lo = c.steps[i] + 1, hi = inputs[i].candidates.size() - 1;
        while (lo < hi) {
          const size_t mid = lo + (hi - lo) / 2;
          c.steps[i] = mid;
          const auto trial = plan_prompt(with_inputs(prompt, inputs, c.steps), registry, options);
          if (failing_node(trial) == failed)
            lo = mid + 1;
          else
            hi = mid;
        }
        c.steps[i] = lo;
        return true;
      }
      return false;
    };
    const std::set<std::string> upstream = upstream_of(prompt, failed);
    if (!step_one([&](const std::string& id) { return id == failed; }) &&
        !step_one([&](const std::string& id) { return upstream.count(id) > 0; }))
      return;
  }
}

json with_placements(const json& prompt, const std::vector<AutoLoader>& loaders,
                     const std::vector<std::string>& placements) {
  json out = prompt;
  for (size_t i = 0; i < loaders.size(); ++i)
    out[loaders[i].node_id]["inputs"]["placement"] = placements[i];
  return out;
}

// Lower is better: less work computed on the CPU (far slower: a DiT there costs far more than a
// T5), fewer bytes moved onto the device per run, fewer models that must move in again on every
// run (offloaded ones), fewer inputs stepped down (smaller tiles recompute more overlap), then
// the lower device peak.
auto rank(const Candidate& c) {
  return std::make_tuple(c.plan.cpu_work, c.plan.transfer_bytes, c.offloaded_models,
                         c.steps_down(), c.plan.device_peak);
}

std::string label(const AutoLoader& loader) {
  return loader.class_type + " (node " + loader.node_id + ")";
}

}  // namespace

int64_t smallest_fitting_vram(const json& api_prompt, const graph::NodeRegistry& registry,
                              const PlanOptions& options) {
  PlanOptions roomy = options;
  roomy.device.vram = kRoomyVram;
  const PlanResult p = plan_prompt(api_prompt, registry, roomy);
  return p.fits ? p.device_peak + options.device.reserve : -1;
}

bool has_auto_placement(const json& api_prompt, const graph::NodeRegistry& registry) {
  return !auto_loaders(api_prompt, nullptr).empty() || !auto_inputs(api_prompt, registry).empty();
}

AutoPlacement resolve_auto_placement(const json& api_prompt, const graph::NodeRegistry& registry,
                                     const PlanOptions& options) {
  AutoPlacement result;
  const std::vector<AutoLoader> loaders = auto_loaders(api_prompt, &registry);
  const std::vector<AutoInput> inputs = auto_inputs(api_prompt, registry);
  if (loaders.empty() && inputs.empty()) {
    result.prompt = api_prompt;
    result.plan = plan_prompt(api_prompt, registry, options);
    result.fits = result.plan.fits;
    return result;
  }
  if (loaders.size() > kMaxAutoLoaders)
    throw ValidationError("placement auto: " + std::to_string(loaders.size()) +
                          " loaders ask for it, at most " + std::to_string(kMaxAutoLoaders) +
                          " can be planned together; set a placement on the others");

  // Every combination, as an odometer over the choices.
  std::vector<Candidate> candidates;
  std::vector<size_t> digit(loaders.size(), 0);
  for (;;) {
    Candidate c;
    for (size_t i = 0; i < loaders.size(); ++i) {
      const std::string& placement = loaders[i].choices[digit[i]];
      c.placements.push_back(placement);
      // Offloaded and streamed models move in again on every run.
      if (placement == "offload" || placement == "stream") ++c.offloaded_models;
    }
    plan_with_inputs(c, with_placements(api_prompt, loaders, c.placements), inputs, registry,
                     options);
    candidates.push_back(std::move(c));
    size_t i = 0;
    while (i < digit.size() && ++digit[i] == loaders[i].choices.size()) digit[i++] = 0;
    if (i == digit.size()) break;
  }

  const Candidate* best = nullptr;
  for (const auto& c : candidates)
    if (c.plan.fits && (!best || rank(c) < rank(*best))) best = &c;
  result.fits = best != nullptr;

  if (!best) {
    // The least --vram any combination needs: plan each with room to spare and take its peak.
    int64_t least = std::numeric_limits<int64_t>::max();
    const Candidate* least_candidate = nullptr;
    for (const auto& c : candidates) {
      const int64_t need = smallest_fitting_vram(
          with_inputs(with_placements(api_prompt, loaders, c.placements), inputs, c.steps),
          registry, options);
      if (need >= 0 && need < least) {
        least = need;
        least_candidate = &c;
      }
    }
    best = least_candidate ? least_candidate : &candidates.front();
    if (least_candidate) result.smallest_budget = least;
  }

  result.prompt =
      with_inputs(with_placements(api_prompt, loaders, best->placements), inputs, best->steps);
  result.plan = best->plan;
  for (size_t i = 0; i < loaders.size(); ++i) {
    AutoChoice choice{loaders[i].node_id, loaders[i].class_type, "placement", best->placements[i],
                      ""};
    // What each placement ahead of the chosen one in the choice order would have done, the
    // others kept as chosen.
    std::string why;
    for (const auto& c : candidates) {
      bool others_same = true;
      for (size_t j = 0; j < loaders.size(); ++j)
        if (j != i && c.placements[j] != best->placements[j]) others_same = false;
      if (!others_same || c.placements[i] == best->placements[i]) continue;
      if (!c.plan.fits) {
        std::string where = "a node";
        for (const auto& n : c.plan.nodes)
          if (!n.ok) {
            where = n.class_type + " (node " + n.node_id + ")";
            break;
          }
        why += (why.empty() ? "" : "; ") + c.placements[i] + " would run out of " +
               format_bytes(c.plan.capacity) + " in " + where;
      } else if (c.plan.cpu_work > best->plan.cpu_work) {
        why += (why.empty() ? "" : "; ") + c.placements[i] + " would fit but compute on the CPU";
      } else if (c.plan.transfer_bytes > best->plan.transfer_bytes) {
        why += (why.empty() ? "" : "; ") + c.placements[i] + " would move " +
               format_bytes(c.plan.transfer_bytes) + " per run instead of " +
               format_bytes(best->plan.transfer_bytes);
      } else if (c.offloaded_models > best->offloaded_models) {
        why += (why.empty() ? "" : "; ") + c.placements[i] +
               " would move it in again on every run";
      } else if (rank(c) > rank(*best)) {
        why += (why.empty() ? "" : "; ") + c.placements[i] + " would fit with a higher peak (" +
               format_bytes(c.plan.device_peak) + ")";
      }
    }
    choice.why = why.empty() ? "every other placement does no better" : why;
    result.summary += "auto placement: " + label(loaders[i]) + " -> " + choice.value + " (" +
                      choice.why + ")\n";
    result.choices.push_back(std::move(choice));
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    const AutoInput& input = inputs[i];
    const size_t step = best->steps[i];
    AutoChoice choice{input.node_id, input.class_type, input.input,
                      choice_text(input.candidates[step]), ""};
    if (!applies(result.prompt, input)) {
      choice.value = choice_text(input.unused_value);
      choice.why = "used only with " + input.when.first + " " + input.when.second;
    } else {
      choice.why = step == 0 ? "the first choice fits"
                             : choice_text(input.candidates[step - 1]) +
                                   " would run out of memory";
    }
    result.summary += "auto " + input.input + ": " + input.class_type + " (node " +
                      input.node_id + ") -> " + choice.value + " (" + choice.why + ")\n";
    result.choices.push_back(std::move(choice));
  }
  if (result.fits) {
    result.summary += "auto placement: planned device peak " + format_bytes(result.plan.device_peak) +
                      " of " + format_bytes(result.plan.capacity) + ", " +
                      format_bytes(result.plan.transfer_bytes) + " moved onto the device per run\n";
  } else if (result.smallest_budget > 0) {
    result.summary += "auto placement: no placement fits " + format_bytes(result.plan.capacity) +
                      "; the smallest card that fits this graph is --vram " +
                      format_bytes(result.smallest_budget) + "\n";
  } else {
    result.summary += "auto placement: no placement fits, at any budget\n";
  }
  return result;
}

}  // namespace wan::plan
