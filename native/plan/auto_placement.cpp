#include "plan/auto_placement.h"

#include <algorithm>
#include <limits>
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

struct Candidate {
  std::vector<std::string> placements;
  PlanResult plan;
  int cpu_models = 0;
  int offloaded_models = 0;
};

json with_placements(const json& prompt, const std::vector<AutoLoader>& loaders,
                     const std::vector<std::string>& placements) {
  json out = prompt;
  for (size_t i = 0; i < loaders.size(); ++i)
    out[loaders[i].node_id]["inputs"]["placement"] = placements[i];
  return out;
}

// Lower is better: fewer models computing on the CPU (far slower), fewer bytes moved onto the
// device per run, fewer models that must move in again on every run (offloaded ones), then the
// lower device peak.
auto rank(const Candidate& c) {
  return std::make_tuple(c.cpu_models, c.plan.transfer_bytes, c.offloaded_models,
                         c.plan.device_peak);
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

bool has_auto_placement(const json& api_prompt) {
  return !auto_loaders(api_prompt, nullptr).empty();
}

AutoPlacement resolve_auto_placement(const json& api_prompt, const graph::NodeRegistry& registry,
                                     const PlanOptions& options) {
  AutoPlacement result;
  const std::vector<AutoLoader> loaders = auto_loaders(api_prompt, &registry);
  if (loaders.empty()) {
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
      if (placement == "cpu") ++c.cpu_models;
      // Offloaded and streamed models move in again on every run.
      if (placement == "offload" || placement == "stream") ++c.offloaded_models;
    }
    c.plan = plan_prompt(with_placements(api_prompt, loaders, c.placements), registry, options);
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
      const int64_t need = smallest_fitting_vram(with_placements(api_prompt, loaders, c.placements),
                                                 registry, options);
      if (need >= 0 && need < least) {
        least = need;
        least_candidate = &c;
      }
    }
    best = least_candidate ? least_candidate : &candidates.front();
    if (least_candidate) result.smallest_budget = least;
  }

  result.prompt = with_placements(api_prompt, loaders, best->placements);
  result.plan = best->plan;
  for (size_t i = 0; i < loaders.size(); ++i) {
    AutoChoice choice{loaders[i].node_id, loaders[i].class_type, best->placements[i], ""};
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
      } else if (c.cpu_models > best->cpu_models) {
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
    result.summary += "auto placement: " + label(loaders[i]) + " -> " + choice.placement + " (" +
                      choice.why + ")\n";
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
