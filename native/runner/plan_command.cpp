// `wan-run --plan`: the memory planner, when this build has it.
#include <spdlog/spdlog.h>

#include <cstdio>

#include "runner/runner.h"

#if defined(WAN_WITH_PLAN) && __has_include("plan/memory_plan.h")
#include "plan/memory_plan.h"
#define WAN_RUNNER_HAS_PLAN 1
#endif

namespace wan::runner {

int run_plan(const RunnerOptions& options, const nlohmann::json& prompt,
             const graph::NodeRegistry& registry, ProgressDisplay& display) {
#ifdef WAN_RUNNER_HAS_PLAN
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
#else
  (void)prompt;
  (void)registry;
  (void)options;
  display.finish();
  spdlog::error(
      "--plan: this build of wan-run has no memory planner (native/plan/ was not built "
      "in); nothing ran");
  return kExitInvalid;
#endif
}

}  // namespace wan::runner
