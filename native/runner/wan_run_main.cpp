// wan-run: runs a ComfyUI workflow of wan-native nodes without ComfyUI. See docs/runner.md.
#include <ATen/Parallel.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>

#include "runner/progress_display.h"
#include "runner/runner.h"
#include "runner/runner_options.h"

namespace {

std::atomic<bool> g_cancel{false};

// First Ctrl-C: ask the run to stop at the next step (it frees memory and exits 130). Second:
// leave at once.
void on_sigint(int) {
  if (g_cancel.exchange(true)) _exit(wan::runner::kExitInterrupted);
}

void install_sigint_handler() {
  struct sigaction action = {};
  action.sa_handler = on_sigint;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace wan::runner;
  auto display = std::make_shared<ProgressDisplay>(stderr, ProgressDisplay::is_terminal(stderr));
  spdlog::set_default_logger(display->make_logger());

  RunnerOptions options;
  try {
    options = parse_runner_options(argc, argv);
    options.validate();
  } catch (const UsageError& e) {
    std::fprintf(stderr, "wan-run: %s\n(see wan-run --help)\n", e.what());
    return kExitInvalid;
  }
  if (options.help) {
    std::printf("%s", runner_usage().c_str());
    return kExitOk;
  }
  spdlog::set_level(options.verbose ? spdlog::level::debug : spdlog::level::info);
  if (options.threads > 0) at::set_num_threads(options.threads);
  install_sigint_handler();

  const int code = run_command(options, wan::graph::NodeRegistry::global(), *display, &g_cancel);
  display->finish();
  spdlog::shutdown();
  return code;
}
