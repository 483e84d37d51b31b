// wan-run: runs a ComfyUI workflow of wan-native nodes without ComfyUI. See docs/runner.md.
#include <ATen/Parallel.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>

#include "core/atomic_file.h"
#include "runner/progress_display.h"
#include "runner/runner.h"
#include "runner/runner_options.h"
#include "nodes/wan_nodes.h"

namespace {

std::atomic<bool> g_cancel{false};
std::atomic<int> g_signal{0};

// First SIGINT, SIGTERM or SIGHUP: ask the run to stop at the next safe point (it removes its
// temporary files, writes the report and exits 128 + the signal). A second one: remove the
// registered temporary files and leave at once. Async-signal-safe only.
void on_stop_signal(int signal_number) {
  int none = 0;
  g_signal.compare_exchange_strong(none, signal_number);
  if (g_cancel.exchange(true)) {
    wan::remove_temp_files_from_signal_handler();
    _exit(128 + signal_number);
  }
}

void install_signal_handlers() {
  struct sigaction action = {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  for (int signal_number : {SIGINT, SIGTERM, SIGHUP}) sigaction(signal_number, &action, nullptr);
  // Past a file-size limit, write() then fails with EFBIG (an error we report) instead of the
  // process being killed mid-save.
  signal(SIGXFSZ, SIG_IGN);
}

// std::terminate (an exception out of a destructor or a thread) still ends with exit 3 and no
// temporary files, never an abort and a core dump.
[[noreturn]] void on_terminate() {
  static const char kMessage[] = "wan-run: internal error: the run was terminated\n";
  ssize_t ignored = write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
  (void)ignored;
  wan::remove_temp_files_from_signal_handler();
  _exit(wan::runner::kExitFailure);
}

int run_main(int argc, char** argv) {
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
  install_signal_handlers();

  const int code =
      run_command(options, wan::nodes::wan_node_registry(), *display, &g_cancel, &g_signal);
  display->finish();
  spdlog::shutdown();
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  std::set_terminate(on_terminate);
  // The last resort: whatever escapes is a runtime failure with a message, never an abort.
  try {
    return run_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wan-run: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "wan-run: internal error: an unknown exception\n");
  }
  std::fflush(stderr);
  return wan::runner::kExitFailure;
}
