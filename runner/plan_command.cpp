// `wan-run --plan`: the memory planner.
#include <spdlog/spdlog.h>

#include <cstdio>

#include "plan/memory_plan.h"
#include "runner/runner.h"

namespace wan::runner {

int run_plan(const RunnerOptions& options, const nlohmann::json& prompt,
             const graph::NodeRegistry& registry, ProgressDisplay& display) {
  plan::PlanOptions plan_options;
  plan_options.models_dir = options.models_dir;
  plan_options.preset = options.preset;
  plan_options.device = options.device_options();
  const plan::PlanResult result = plan::plan_prompt(prompt, registry, plan_options);
  display.finish();
  std::printf("%s", result.text.c_str());
  if (!result.text.empty() && result.text.back() != '\n') std::printf("\n");
  std::fflush(stdout);
  if (!options.report.empty()) write_file_atomically(options.report, result.json.dump(2) + "\n");
  if (!result.fits) {
    spdlog::error("the plan foresees an out-of-memory: {}", result.first_oom_message);
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace wan::runner
