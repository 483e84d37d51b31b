#include "runner/runner.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <optional>

#include "core/atomic_file.h"
#include "core/error.h"
#include "device/device_manager.h"
#include "graph/executor.h"
#include "graph/validator.h"
#include "graph/workflow_json.h"

namespace wan::runner {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Prints ComfyUI's error JSON on stderr. Never throws: invalid UTF-8 becomes U+FFFD, and a
// report of thousands of broken nodes is cut to the first kMaxNodesPrinted (still valid JSON).
void print_error_json(ProgressDisplay& display, const json& report) noexcept {
  constexpr size_t kMaxNodesPrinted = 50;
  constexpr size_t kMaxPrintedBytes = size_t(1) << 20;
  try {
    display.finish();
    std::string text;
    const json* shown = &report;
    json cut;
    if (report.contains("node_errors") && report["node_errors"].size() > kMaxNodesPrinted) {
      cut = report;
      cut["node_errors"] = json::object();
      size_t kept = 0;
      for (const auto& [id, entry] : report["node_errors"].items()) {
        if (kept++ == kMaxNodesPrinted) break;
        cut["node_errors"][id] = entry;
      }
      cut["node_errors_not_shown"] = report["node_errors"].size() - kMaxNodesPrinted;
      shown = &cut;
    }
    text = shown->dump(2, ' ', false, json::error_handler_t::replace);
    if (text.size() > kMaxPrintedBytes) {
      const json& error = report.contains("error") ? report["error"] : json();
      json small = invalid_prompt_json(
          error.is_object() && error.contains("message") && error["message"].is_string()
              ? error["message"].get<std::string>()
              : std::string("invalid workflow"));
      small["error"]["details"] = "the full report is " + std::to_string(text.size()) +
                                  " bytes; not printed";
      text = small.dump(2, ' ', false, json::error_handler_t::replace);
    }
    std::fprintf(stderr, "%s\n", text.c_str());
  } catch (...) {
    std::fprintf(stderr, "{\"error\": {\"type\": \"invalid_prompt\", \"message\": "
                         "\"the error report could not be printed\"}, \"node_errors\": {}}\n");
  }
  std::fflush(stderr);
}

// The report: the ledger's stages plus how the run ended. False when it could not be written
// (a full disk): the caller then fails the run, since the user asked for it.
bool write_report(const RunnerOptions& options, const device::DeviceManager& devices,
                  const graph::Executor& executor, const std::string& outcome,
                  const std::string& error, int exit_code) {
  if (options.report.empty()) return true;
  fs::path svg = options.report;
  svg.replace_extension(".svg");
  try {
    const json report =
        run_report_json(devices.ledger().to_json(), devices.compute().name(),
                        executor.last_report(), outcome, error, exit_code,
                        options.workflow.string());
    if (options.report.has_parent_path()) fs::create_directories(options.report.parent_path());
    write_file_atomically(options.report,
                          report.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
    // A device such as /dev/stdout takes the JSON only; no .svg is made beside it.
    std::error_code ec;
    if (svg != options.report && !fs::is_character_file(options.report, ec))
      write_file_atomically(svg, devices.ledger().to_svg());
    spdlog::info("report: {} and {}", options.report.string(), svg.string());
    return true;
  } catch (const std::exception& e) {
    spdlog::error("could not write the report {}: {}", options.report.string(), e.what());
    return false;
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

std::string signal_name(int signal_number) {
  switch (signal_number) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
  }
  return "signal " + std::to_string(signal_number);
}

// --plan reads weight headers: a truncated or hostile file is a runtime failure (exit 3) that
// names the file, never an exception out of main.
int run_plan_safely(const RunnerOptions& options, const json& prompt,
                    const graph::NodeRegistry& registry, ProgressDisplay& display) {
  try {
    return run_plan(options, prompt, registry, display);
  } catch (const graph::InvalidPrompt& e) {
    print_error_json(display, e.report());
    return kExitInvalid;
  } catch (const ValidationError& e) {
    spdlog::error("--plan: {}", e.what());
    print_error_json(display, invalid_prompt_json(e.what()));
    return kExitInvalid;
  } catch (const std::exception& e) {
    display.finish();
    spdlog::error("--plan failed: {}", e.what());
    return kExitFailure;
  }
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
  wan::write_text_atomically(path, text);
}

int interrupted_exit_code(int signal_number) {
  return signal_number > 0 ? 128 + signal_number : kExitInterrupted;
}

json run_report_json(const json& ledger, const std::string& compute_device,
                     const graph::RunReport& run, const std::string& outcome,
                     const std::string& error, int exit_code, const std::string& workflow) {
  json report = ledger;
  report["outcome"] = outcome;
  report["exit_code"] = exit_code;
  if (!error.empty()) report["error"] = error;
  report["workflow"] = workflow;
  report["compute_device"] = compute_device;
  report["run"] = run.to_json();
  return report;
}

EmbeddedMetadata embedded_metadata(const json& prompt, const std::string& text, bool ui_workflow) {
  EmbeddedMetadata embedded;
  const auto in_order = nlohmann::ordered_json::parse(text);
  if (ui_workflow) {
    embedded.prompt = graph::in_order_of(prompt, nullptr);
    embedded.extra_pnginfo = {{"workflow", in_order}};
    return embedded;
  }
  const bool body = in_order.contains("prompt") && in_order["prompt"].is_object();
  embedded.prompt = graph::in_order_of(prompt, body ? in_order["prompt"] : in_order);
  if (body && in_order.contains("extra_data") && in_order["extra_data"].is_object() &&
      in_order["extra_data"].contains("extra_pnginfo") &&
      in_order["extra_data"]["extra_pnginfo"].is_object())
    embedded.extra_pnginfo = in_order["extra_data"]["extra_pnginfo"];
  return embedded;
}

json load_prompt(const RunnerOptions& options, const graph::NodeRegistry& registry,
                 json* ui_workflow, EmbeddedMetadata* embedded) {
  // Read once: parsed bounded for running, and again in file order for embedding.
  const std::string text = graph::read_workflow_text(options.workflow);
  const json workflow = graph::parse_workflow_text(text, options.workflow);
  json prompt = graph::to_api_prompt(workflow, registry);
  if (ui_workflow) *ui_workflow = graph::is_ui_workflow(workflow) ? workflow : json();
  for (const auto& assignment : options.overrides)
    graph::apply_override(prompt, assignment, registry);
  if (embedded) *embedded = embedded_metadata(prompt, text, graph::is_ui_workflow(workflow));
  return prompt;
}

void check_models_dir(const RunnerOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(options.models_dir, ec))
    throw ValidationError("--models '" + options.models_dir.string() +
                          "': not a folder; it should hold diffusion_models/, text_encoders/, "
                          "vae/, clip_vision/ and tokenizers/");
}

graph::ValidateOptions validate_options(const RunnerOptions& options) {
  return {options.models_dir, options.output_dir, options.input_dir};
}

graph::RunContext base_run_context(const RunnerOptions& options, device::DeviceManager& devices,
                                   const std::atomic<bool>* cancel) {
  graph::RunContext run;
  run.models_dir = options.models_dir;
  run.output_dir = options.output_dir;
  run.input_dir = options.input_dir;
  run.cancel_flag = cancel;
  run.device_manager = &devices;
  run.temp_dir = options.temp_dir.empty() ? options.output_dir / "temp" : options.temp_dir;
  run.embed_metadata = !options.disable_metadata;
  return run;
}

int run_command(const RunnerOptions& options, const graph::NodeRegistry& registry,
                ProgressDisplay& display, const std::atomic<bool>* cancel,
                const std::atomic<int>* signal_number) {
  if (options.object_info) {
    std::printf("%s\n", registry.object_info(options.models_dir).dump(2).c_str());
    return kExitOk;
  }

  // Everything before a node runs: any problem is an invalid workflow (exit 2).
  json prompt, ui_workflow;
  EmbeddedMetadata embedded;
  device::ComputeDeviceOptions device_options;
  try {
    check_models_dir(options);
    prompt = load_prompt(options, registry, &ui_workflow, &embedded);
    device_options = options.device_options();
    if (options.plan) return run_plan_safely(options, prompt, registry, display);
    const auto validation = graph::validate_prompt(prompt, registry, validate_options(options));
    if (!validation.ok) {
      spdlog::error("the workflow is invalid; nothing ran");
      print_error_json(display, validation.to_json());
      return kExitInvalid;
    }
    if (const int code = resolve_auto_placement(options, registry, &prompt); code != kExitOk)
      return code;
  } catch (const graph::InvalidPrompt& e) {
    print_error_json(display, e.report());
    return kExitInvalid;
  } catch (const ValidationError& e) {
    spdlog::error("{}", e.what());
    print_error_json(display, invalid_prompt_json(e.what()));
    return kExitInvalid;
  } catch (const nlohmann::json::exception& e) {
    // A workflow whose structure the readers did not expect (a field of the wrong JSON type).
    spdlog::error("the workflow is invalid: {}", e.what());
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
  graph::RunContext run = base_run_context(options, *devices, cancel);
  run.prompt = prompt;
  run.workflow = ui_workflow;
  run.embedded_prompt = std::move(embedded.prompt);
  run.extra_pnginfo = std::move(embedded.extra_pnginfo);
  run.on_ui = [](const std::string& node_id, const json& ui) {
    for (const auto& file : ui.contains("images") ? ui["images"] : json::array())
      spdlog::debug("node {}: {} {}/{}", node_id, file.value("type", ""),
                    file.value("subfolder", ""), file.value("filename", ""));
  };
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
    return write_report(options, *devices, executor, "ok", "", kExitOk) ? kExitOk : kExitFailure;
  } catch (const Cancelled&) {
    close_stage("cancelled");
    display.finish();
    const int signal = signal_number ? signal_number->load() : 0;
    const int code = interrupted_exit_code(signal);
    const std::string why = signal > 0 ? "interrupted by " + signal_name(signal) : "interrupted";
    spdlog::warn("{}; the run stopped and wrote no partial output", why);
    write_report(options, *devices, executor, "cancelled", why, code);
    return code;
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
