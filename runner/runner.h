// The headless runner behind `wan-run`: reads a workflow, applies --set overrides, validates,
// and runs it on a device manager built from --device/--vram/--reserve, recording a memory
// stage per node. Exit codes are part of the interface (docs/runner.md).
#pragma once
#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "graph/node_registry.h"
#include "runner/progress_display.h"
#include "runner/runner_options.h"

namespace wan::runner {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalid = 2;        // bad command line or workflow; nothing ran
inline constexpr int kExitFailure = 3;        // a node failed (out of memory, missing file, ...)
inline constexpr int kExitInterrupted = 130;  // SIGINT: 128 + 2, as shells report it
// A run stopped by a signal exits 128 + its number, as shells report it: SIGINT 130,
// SIGTERM 143, SIGHUP 129. 0 (no signal known) gives kExitInterrupted.
int interrupted_exit_code(int signal_number);

// Reads WORKFLOW (either format) into an API prompt with the overrides applied. `ui_workflow`
// receives the UI workflow when the file is one (null otherwise). Throws ValidationError.
nlohmann::json load_prompt(const RunnerOptions& options, const graph::NodeRegistry& registry,
                           nlohmann::json* ui_workflow);

// Runs the command `options` describe (after validate()) and returns the exit code. Messages go
// through `display` (stderr); --object-info and --plan print their result on stdout. `cancel`
// is raised by the signal handler (SIGINT, SIGTERM, SIGHUP); the run stops at the next step and
// exits interrupted_exit_code(*signal_number). A --report that cannot be written fails the run.
int run_command(const RunnerOptions& options, const graph::NodeRegistry& registry,
                ProgressDisplay& display, const std::atomic<bool>* cancel,
                const std::atomic<int>* signal_number = nullptr);

// `--plan`: prints the predicted memory timeline; 0 when it fits, 3 when it foresees an
// out-of-memory, 2 when this build has no planner.
int run_plan(const RunnerOptions& options, const nlohmann::json& prompt,
             const graph::NodeRegistry& registry, ProgressDisplay& display);

// A ValidationError that is not already ComfyUI JSON, as {"error": {...}, "node_errors": {}}.
nlohmann::json invalid_prompt_json(const std::string& message);

// Writes `text` to `path` through a registered temporary file and a rename
// (core/atomic_file.h); throws Error naming the file when a write fails (a full disk).
void write_file_atomically(const std::filesystem::path& path, const std::string& text);

}  // namespace wan::runner
