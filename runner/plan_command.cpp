// `wan-run --plan`: the memory planner.
#include <spdlog/spdlog.h>

#include <cstdio>

#include "core/error.h"
#include "device/placement.h"

#include "plan/auto_placement.h"
#include "plan/memory_plan.h"
#include "runner/runner.h"

namespace wan::runner {

namespace {

plan::PlanOptions plan_options_of(const RunnerOptions& options) {
  plan::PlanOptions plan_options;
  plan_options.models_dir = options.models_dir;
  plan_options.input_dir = options.input_dir;
  plan_options.preset = options.preset;
  plan_options.device = options.device_options();
  return plan_options;
}

}  // namespace

int run_plan(const RunnerOptions& options, const nlohmann::json& prompt,
             const graph::NodeRegistry& registry, ProgressDisplay& display) {
  const plan::PlanOptions plan_options = plan_options_of(options);
  const plan::AutoPlacement resolved = plan::resolve_auto_placement(prompt, registry, plan_options);
  const plan::PlanResult& result = resolved.plan;
  display.finish();
  std::printf("%s", resolved.summary.c_str());
  std::printf("%s", result.text.c_str());
  if (!result.text.empty() && result.text.back() != '\n') std::printf("\n");
  if (!result.fits && resolved.choices.empty()) {
    const int64_t need = plan::smallest_fitting_vram(prompt, registry, plan_options);
    if (need > 0) {
      std::printf("smallest card this graph fits on as placed: --vram %s\n", format_bytes(need).c_str());
    }
    // What the planner would choose for every loader, to say how the graph could fit.
    nlohmann::json all_auto = prompt;
    bool has_loaders = false;
    for (auto& [id, node] : all_auto.items()) {
      if (!node.is_object() || !node.contains("inputs") || !node["inputs"].is_object() ||
          !node["inputs"].contains("placement"))
        continue;
      node["inputs"]["placement"] = device::kAutoPlacement;
      has_loaders = true;
    }
    if (has_loaders) {
      const plan::AutoPlacement best = plan::resolve_auto_placement(all_auto, registry, plan_options);
      if (best.fits) {
        std::printf("with placement auto on every loader it fits:\n%s", best.summary.c_str());
      } else if (best.smallest_budget > 0) {
        std::printf("with placement auto on every loader: --vram %s\n",
                    format_bytes(best.smallest_budget).c_str());
      }
    }
  }
  std::fflush(stdout);
  if (!options.report.empty()) {
    nlohmann::json report = result.json;
    if (!resolved.choices.empty()) {
      nlohmann::json choices = nlohmann::json::array();
      for (const auto& c : resolved.choices) {
        nlohmann::json entry = {{"node", c.node_id}, {"class_type", c.class_type},
                                {"input", c.input}, {"value", c.value}, {"why", c.why}};
        if (c.input == "placement") entry["placement"] = c.value;
        choices.push_back(std::move(entry));
      }
      report["auto_placement"] = choices;
      if (resolved.smallest_budget > 0) report["smallest_vram"] = resolved.smallest_budget;
    }
    write_file_atomically(options.report, report.dump(2) + "\n");
  }
  if (!result.fits) {
    spdlog::error("the plan foresees an out-of-memory: {}", result.first_oom_message);
    return kExitFailure;
  }
  return kExitOk;
}

int resolve_auto_placement(const RunnerOptions& options, const graph::NodeRegistry& registry,
                           nlohmann::json* prompt) {
  if (!plan::has_auto_placement(*prompt, registry)) return kExitOk;
  const plan::AutoPlacement resolved =
      plan::resolve_auto_placement(*prompt, registry, plan_options_of(options));
  std::string line;
  for (char c : resolved.summary) {
    if (c != '\n') {
      line += c;
      continue;
    }
    spdlog::info("{}", line);
    line.clear();
  }
  if (!resolved.fits) {
    spdlog::error("no placement fits; nothing ran: {}", resolved.plan.first_oom_message);
    return kExitFailure;
  }
  *prompt = resolved.prompt;
  return kExitOk;
}

}  // namespace wan::runner
