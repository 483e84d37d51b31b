// The headless runner behind `wan-run`: reads a workflow, applies --set overrides, validates,
// and runs it on a device manager built from --device/--vram/--reserve, recording a memory
// stage per node. Exit codes are part of the interface (docs/runner.md).
#pragma once
#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "graph/executor.h"
#include "graph/node_registry.h"
#include "graph/validator.h"
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

// What outputs embed, as ComfyUI does: the prompt in the order it arrived, then extra_pnginfo
// (a /prompt body's extra_data.extra_pnginfo, or {"workflow": <the UI workflow file>}).
struct EmbeddedMetadata {
  nlohmann::ordered_json prompt, extra_pnginfo;
};
// `prompt` (converted, overrides applied) in the key order of `text`, the JSON it came from: a
// UI workflow, an API prompt or a /prompt request body. `text` must already have parsed.
EmbeddedMetadata embedded_metadata(const nlohmann::json& prompt, const std::string& text,
                                   bool ui_workflow);

// Reads WORKFLOW (either format) into an API prompt with the overrides applied. `ui_workflow`
// receives the UI workflow when the file is one (null otherwise); `embedded`, what outputs
// embed. Throws ValidationError.
nlohmann::json load_prompt(const RunnerOptions& options, const graph::NodeRegistry& registry,
                           nlohmann::json* ui_workflow, EmbeddedMetadata* embedded = nullptr);

// The pieces of a run that wan-run and wan-serve share.
// Throws ValidationError when --models is not a folder.
void check_models_dir(const RunnerOptions& options);
// The folders validation checks names against.
graph::ValidateOptions validate_options(const RunnerOptions& options);
// A run context with the folders, the device manager, the cancel flag and the metadata switch
// set; the caller adds the prompt, its metadata and the callbacks.
graph::RunContext base_run_context(const RunnerOptions& options, device::DeviceManager& devices,
                                   const std::atomic<bool>* cancel);
// The --report JSON: `ledger` (MemoryLedger::to_json of the run's stages) plus how it ended.
nlohmann::json run_report_json(const nlohmann::json& ledger, const std::string& compute_device,
                               const graph::RunReport& run, const std::string& outcome,
                               const std::string& error, int exit_code,
                               const std::string& workflow);

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

// Replaces every `placement: auto` of `prompt` by the planner's choice for the whole graph
// (plan/auto_placement.h), logging each choice and why. kExitFailure, with nothing changed, when
// no placement fits.
int resolve_auto_placement(const RunnerOptions& options, const graph::NodeRegistry& registry,
                           nlohmann::json* prompt);

// A ValidationError that is not already ComfyUI JSON, as {"error": {...}, "node_errors": {}}.
nlohmann::json invalid_prompt_json(const std::string& message);

// Writes `text` to `path` through a registered temporary file and a rename
// (core/atomic_file.h); throws Error naming the file when a write fails (a full disk).
void write_file_atomically(const std::filesystem::path& path, const std::string& text);

}  // namespace wan::runner
