#include "runner/runner.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <optional>

#include "core/error.h"
#include "device/device_manager.h"
#include "graph/executor.h"
#include "graph/validator.h"
#include "graph/workflow_json.h"

namespace wan::runner {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

void print_error_json(ProgressDisplay& display, const json& report) {
  display.finish();
  std::fprintf(stderr, "%s\n", report.dump(2).c_str());
  std::fflush(stderr);
}

// The report: the ledger's stages plus how the run ended.
void write_report(const RunnerOptions& options, const device::DeviceManager& devices,
                  const graph::Executor& executor, const std::string& outcome,
                  const std::string& error, int exit_code) {
  if (options.report.empty()) return;
  json report = devices.ledger().to_json();
  report["outcome"] = outcome;
  report["exit_code"] = exit_code;
  if (!error.empty()) report["error"] = error;
  report["workflow"] = options.workflow.string();
  report["compute_device"] = devices.compute().name();
  report["run"] = executor.last_report().to_json();
  fs::path svg = options.report;
  svg.replace_extension(".svg");
  try {
    if (options.report.has_parent_path()) fs::create_directories(options.report.parent_path());
    write_file_atomically(options.report, report.dump(2) + "\n");
    devices.ledger().write_svg(svg);
    spdlog::info("report: {} and {}", options.report.string(), svg.string());
  } catch (const std::exception& e) {
    spdlog::error("could not write the report {}: {}", options.report.string(), e.what());
  }
}

// Details of an out-of-memory cause, for the final message.
std::string describe_cause(const std::exception_ptr& cause) {
  try {
    if (cause) std::rethrow_exception(cause);
  } catch (const OutOfMemory& oom) {
    return "out of memory on " + oom.device() + ": tensor '" + oom.tensor() + "' asked " +
           format_bytes(oom.bytes_requested()) + ", " + format_bytes(oom.bytes_free()) +
           " free of " + format_bytes(oom.bytes_capacity());
  } catch (...) {
  }
  return "";
}

}  // namespace

json invalid_prompt_json(const std::string& message) {
  return {{"error",
           {{"type", "invalid_prompt"},
            {"message", message},
            {"details", ""},
            {"extra_info", json::object()}}},
          {"node_errors", json::object()}};
}

void write_file_atomically(const fs::path& path, const std::string& text) {
  const fs::path temp = path.string() + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("cannot write '" + temp.string() + "'");
    out << text;
    if (!out.flush()) throw Error("cannot write '" + temp.string() + "'");
  }
  fs::rename(temp, path);
}

json load_prompt(const RunnerOptions& options, const graph::NodeRegistry& registry,
                 json* ui_workflow) {
  const json workflow = graph::read_json_file(options.workflow);
  json prompt = graph::to_api_prompt(workflow, registry);
  if (ui_workflow) *ui_workflow = graph::is_ui_workflow(workflow) ? workflow : json();
  for (const auto& assignment : options.overrides)
    graph::apply_override(prompt, assignment, registry);
  return prompt;
}

int run_command(const RunnerOptions& options, const graph::NodeRegistry& registry,
                ProgressDisplay& display, const std::atomic<bool>* cancel) {
  if (options.object_info) {
    std::printf("%s\n", registry.object_info(options.models_dir).dump(2).c_str());
    return kExitOk;
  }

  // Everything before a node runs: any problem is an invalid workflow (exit 2).
  json prompt, ui_workflow;
  device::ComputeDeviceOptions device_options;
  try {
    std::error_code ec;
    if (!fs::is_directory(options.models_dir, ec))
      throw ValidationError("--models '" + options.models_dir.string() +
                            "': not a folder; it should hold diffusion_models/, text_encoders/, "
                            "vae/, clip_vision/ and tokenizers/");
    prompt = load_prompt(options, registry, &ui_workflow);
    device_options = options.device_options();
    if (options.plan) return run_plan(options, prompt, registry, display);
    const auto validation = graph::validate_prompt(prompt, registry, {options.models_dir});
    if (!validation.ok) {
      spdlog::error("the workflow is invalid; nothing ran");
      print_error_json(display, validation.to_json());
      return kExitInvalid;
    }
  } catch (const graph::InvalidPrompt& e) {
    print_error_json(display, e.report());
    return kExitInvalid;
  } catch (const ValidationError& e) {
    spdlog::error("{}", e.what());
    print_error_json(display, invalid_prompt_json(e.what()));
    return kExitInvalid;
  }

  std::optional<device::DeviceManager> devices;
  try {
    devices.emplace(device_options);
  } catch (const ValidationError& e) {
    spdlog::error("{}", e.what());
    print_error_json(display, invalid_prompt_json(e.what()));
    return kExitInvalid;
  } catch (const std::exception& e) {
    spdlog::error("cannot set up the compute device: {}", e.what());
    return kExitFailure;
  }

  std::error_code ec;
  fs::create_directories(options.output_dir, ec);
  if (ec) {
    spdlog::error("--output '{}': cannot create the folder: {}", options.output_dir.string(),
                  ec.message());
    return kExitFailure;
  }

  // Declared after the device manager: the executor's cache holds models the manager tracks,
  // so it must go first.
  graph::Executor executor(registry);
  graph::RunContext run;
  run.models_dir = options.models_dir;
  run.output_dir = options.output_dir;
  run.input_dir = options.input_dir;
  run.cancel_flag = cancel;
  run.device_manager = &*devices;
  run.prompt = prompt;
  run.workflow = ui_workflow;
  auto& ledger = devices->ledger();
  // The executor records a ledger stage per node; a failure outside any node closes here.
  run.on_progress = [&](const graph::ProgressEvent& event) { display.on_event(event); };
  auto close_stage = [&](const std::string& what) {
    if (ledger.in_stage()) ledger.end_stage(device::StageOutcome::failure(what));
  };

  try {
    const auto report = executor.run(prompt, run);
    display.finish();
    spdlog::info("done: {} nodes ran in {:.2f} s; outputs in {}", report.executed(),
                 report.wall_ms / 1000.0, options.output_dir.string());
    write_report(options, *devices, executor, "ok", "", kExitOk);
    return kExitOk;
  } catch (const Cancelled&) {
    close_stage("cancelled");
    display.finish();
    spdlog::warn("interrupted; the run stopped and wrote no partial output");
    write_report(options, *devices, executor, "cancelled", "interrupted", kExitInterrupted);
    return kExitInterrupted;
  } catch (const graph::InvalidPrompt& e) {
    close_stage(e.what());
    print_error_json(display, e.report());
    return kExitInvalid;
  } catch (const graph::NodeError& e) {
    close_stage(e.what());
    display.finish();
    std::string message = e.what();
    const std::string details = describe_cause(e.cause());
    if (!details.empty()) message += "\n  " + details;
    spdlog::error("run failed in {} (node {}): {}", e.class_type(), e.node_id(), message);
    write_report(options, *devices, executor, "error", message, kExitFailure);
    return kExitFailure;
  } catch (const std::exception& e) {
    close_stage(e.what());
    display.finish();
    spdlog::error("run failed: {}", e.what());
    write_report(options, *devices, executor, "error", e.what(), kExitFailure);
    return kExitFailure;
  }
}

}  // namespace wan::runner
