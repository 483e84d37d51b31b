#include "server/engine.h"

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>
#include <torch/headeronly/version.h>

#include <chrono>
#include <map>
#include <set>

#include "core/error.h"
#include "device/device_manager.h"
#include "graph/executor.h"
#include "graph/validator.h"
#include "graph/workflow_json.h"
#include "media/image_file.h"
#include "media/video_writer.h"
#include "pipeline/latent_preview.h"
#include "runner/runner.h"
#include "runner/runner_options.h"
#include "nodes/wan_nodes.h"

namespace wan::server {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// wan-run flags that only make sense for one workflow run; wan-serve refuses them by name.
void refuse_runner_only(const runner::RunnerOptions& options) {
  auto refuse = [](const std::string& flag) {
    throw ValidationError(flag + " is a wan-run option; wan-serve takes workflows over HTTP");
  };
  if (!options.workflow.empty()) refuse("a workflow argument ('" + options.workflow.string() + "')");
  if (options.plan) refuse("--plan");
  if (!options.preset.empty()) refuse("--preset");
  if (!options.report.empty()) refuse("--report (each prompt's report is in /history)");
  if (options.object_info) refuse("--object-info (GET /object_info)");
  if (!options.overrides.empty()) refuse("--set");
}

// The part of `prompt` that node `id` depends on (itself and every ancestor), as one JSON: an
// output node served from the cache has exactly the ancestry of the run that made its ui.
std::string ancestry_key(const json& prompt, const std::string& id) {
  json subset = json::object();
  std::vector<std::string> todo = {id};
  while (!todo.empty()) {
    const std::string next = todo.back();
    todo.pop_back();
    if (subset.contains(next) || !prompt.contains(next)) continue;
    subset[next] = prompt[next];
    const json& inputs = prompt[next].value("inputs", json::object());
    for (const auto& [name, value] : inputs.items()) {
      std::string up;
      int64_t index = 0;
      if (graph::parse_link(value, &up, &index)) todo.push_back(up);
    }
  }
  return subset.dump(-1, ' ', false, json::error_handler_t::replace);
}

const char* exception_type(const std::exception_ptr& cause) {
  try {
    if (cause) std::rethrow_exception(cause);
  } catch (const OutOfMemory&) {
    return "wan::OutOfMemory";
  } catch (const LoadError&) {
    return "wan::LoadError";
  } catch (const ValidationError&) {
    return "wan::ValidationError";
  } catch (const Error&) {
    return "wan::Error";
  } catch (...) {
  }
  return "std::exception";
}

// The stages [start, end) of `ledger` as a ledger of their own, for one prompt's report and
// chart: each stage is replayed with the bytes it recorded.
void prompt_ledger(const device::MemoryLedger& ledger, size_t start, json* report_json,
                   std::string* svg) {
  const auto& stages = ledger.stages();
  size_t next = start;
  device::MemoryLedger replay(
      [&] { return device::MemorySample{stages[next].devices, stages[next].models}; }, nullptr);
  for (; next < stages.size(); ++next) {
    replay.begin_stage(stages[next].node_id, stages[next].class_type);
    replay.add_transfer(stages[next].bytes_in, stages[next].bytes_out, stages[next].transfer_s);
    replay.end_stage(stages[next].outcome);
  }
  *report_json = replay.to_json();
  auto& nodes = (*report_json)["nodes"];
  for (size_t i = 0; i < nodes.size(); ++i) nodes[i]["wall_s"] = stages[start + i].wall_s;
  *svg = replay.to_svg();
}

}  // namespace

struct Engine::State {
  runner::RunnerOptions options;
  EngineFolders folders;
  const graph::NodeRegistry& registry = wan::nodes::wan_node_registry();
  std::unique_ptr<device::DeviceManager> devices;
  // After the device manager: the cache holds models the manager tracks, so it goes first.
  std::unique_ptr<graph::Executor> executor;
  std::atomic<bool> cancel{false};
  // What cached output nodes showed when they last ran, by ancestry_key.
  std::map<std::string, json> last_ui;
};

Engine::Engine(const std::vector<std::string>& engine_args) : state_(std::make_unique<State>()) {
  auto& options = state_->options;
  try {
    options = runner::parse_runner_options(engine_args);
  } catch (const runner::UsageError& e) {
    throw ValidationError(e.what());
  }
  refuse_runner_only(options);
  if (options.models_dir.empty()) throw ValidationError("--models DIR is required");
  runner::check_models_dir(options);
  if (options.threads > 0) at::set_num_threads(options.threads);
  state_->folders = {options.models_dir, options.output_dir, options.input_dir,
                     options.temp_dir.empty() ? options.output_dir / "temp" : options.temp_dir};
  for (const fs::path& folder : {state_->folders.output, state_->folders.input,
                                 state_->folders.temp}) {
    std::error_code ec;
    fs::create_directories(folder, ec);
    if (ec) throw Error("cannot create the folder '" + folder.string() + "': " + ec.message());
  }
  state_->devices = std::make_unique<device::DeviceManager>(options.device_options());
  state_->executor = std::make_unique<graph::Executor>(state_->registry);
  spdlog::info("engine: compute device {}, models {}, outputs {}", state_->devices->compute().name(),
               options.models_dir.string(), options.output_dir.string());
}

Engine::~Engine() = default;

const EngineFolders& Engine::folders() const { return state_->folders; }
bool Engine::verbose() const { return state_->options.verbose; }

json Engine::object_info() const {
  return state_->registry.object_info(state_->options.models_dir, state_->options.input_dir);
}

std::vector<std::string> Engine::model_folders() const {
  std::set<std::string> folders;
  for (const auto* schema : state_->registry.schemas())
    for (const auto& input : schema->inputs())
      if (!input.model_folder_name().empty()) folders.insert(input.model_folder_name());
  return {folders.begin(), folders.end()};
}

std::vector<std::string> Engine::model_files(const std::string& folder) const {
  return graph::list_model_files(state_->options.models_dir, folder,
                                 graph::model_file_extensions());
}

PromptCheck Engine::check(const json& workflow, json* api_prompt) const {
  PromptCheck result;
  auto invalid = [&](const json& report) {
    result.ok = false;
    result.error = report.value("error", json::object());
    result.node_errors = report.value("node_errors", json::object());
  };
  try {
    json prompt = graph::to_api_prompt(workflow, state_->registry);
    const auto validation = graph::validate_prompt(prompt, state_->registry,
                                                   runner::validate_options(state_->options));
    result.ok = validation.ok;
    result.error = validation.error;
    result.node_errors = validation.node_errors;
    result.outputs = validation.outputs;
    if (api_prompt) *api_prompt = std::move(prompt);
  } catch (const graph::InvalidPrompt& e) {
    invalid(e.report());
  } catch (const std::exception& e) {
    // A ValidationError of the converter, or a field of an unexpected JSON type.
    invalid(runner::invalid_prompt_json(e.what()));
  }
  return result;
}

void Engine::embed(PromptJob& job, const std::string& body_text) const {
  const auto body = nlohmann::ordered_json::parse(body_text);
  runner::EmbeddedMetadata embedded;
  if (graph::is_ui_workflow(json(body["prompt"])))
    embedded = runner::embedded_metadata(job.prompt, body["prompt"].dump(), true);
  else
    embedded = runner::embedded_metadata(job.prompt, body_text, false);
  job.embedded_prompt = std::move(embedded.prompt);
  job.extra_pnginfo = std::move(embedded.extra_pnginfo);
}

PromptOutcome Engine::run(const PromptJob& job, const Emit& emit, const EmitPreview& preview) {
  State& state = *state_;
  PromptOutcome outcome;
  json messages = json::array();
  const std::string& id = job.prompt_id;
  // Messages that /history keeps in status.messages, as ComfyUI's add_message does.
  auto add_message = [&](const std::string& event, json data) {
    data["timestamp"] = now_ms();
    messages.push_back(json::array({event, data}));
    emit(event, data);
  };
  state.cancel = false;
  add_message("execution_start", {{"prompt_id", id}});

  graph::RunContext run = runner::base_run_context(state.options, *state.devices, &state.cancel);
  run.prompt = job.prompt;
  run.embedded_prompt = job.embedded_prompt;
  run.extra_pnginfo = job.extra_pnginfo;

  std::vector<std::string> cached, cached_unsent;
  bool cached_sent = false;
  auto send_cached = [&] {
    if (cached_sent && cached_unsent.empty()) return;
    add_message("execution_cached", {{"nodes", cached_unsent}, {"prompt_id", id}});
    cached_unsent.clear();
    cached_sent = true;
  };
  auto show_ui = [&](const std::string& node_id, const json& ui) {
    outcome.outputs[node_id] = ui;
    outcome.meta[node_id] = {{"node_id", node_id},
                             {"display_node", node_id},
                             {"parent_node", nullptr},
                             {"real_node_id", node_id}};
    emit("executed",
         {{"node", node_id}, {"display_node", node_id}, {"output", ui}, {"prompt_id", id}});
  };
  run.on_progress = [&](const graph::ProgressEvent& event) {
    switch (event.kind) {
      case graph::ProgressEvent::Kind::kNodeCached: {
        cached.push_back(event.node_id);
        cached_unsent.push_back(event.node_id);
        const auto ui = state.last_ui.find(ancestry_key(job.prompt, event.node_id));
        if (ui != state.last_ui.end()) {
          send_cached();
          show_ui(event.node_id, ui->second);
        }
        break;
      }
      case graph::ProgressEvent::Kind::kNodeStarted:
        send_cached();
        emit("executing", {{"node", event.node_id}, {"display_node", event.node_id},
                           {"prompt_id", id}});
        break;
      case graph::ProgressEvent::Kind::kStep:
        emit("progress", {{"value", event.step}, {"max", event.steps}, {"prompt_id", id},
                          {"node", event.node_id}});
        break;
      case graph::ProgressEvent::Kind::kNodeFinished:
        break;
    }
  };
  if (preview) {
    run.on_latent = [&](const std::string&, const at::Tensor& x0) {
      // ComfyUI's Latent2RGB preview, JPEG at quality 95 as it saves them. Latents stay far
      // below its 512-pixel preview limit (a 1280x720 video's are 160x90), so none is resized.
      const std::vector<uint8_t> jpeg =
          media::encode_jpeg(pipeline::latent_preview_rgb8(x0), 95, "latent preview");
      std::string message = {0, 0, 0, 1, 0, 0, 0, 1};  // PREVIEW_IMAGE, JPEG
      message.append(jpeg.begin(), jpeg.end());
      preview(message);
    };
  }
  run.on_ui = [&](const std::string& node_id, const json& ui) {
    constexpr size_t kMaxRememberedUi = 256;
    if (state.last_ui.size() >= kMaxRememberedUi) state.last_ui.clear();
    state.last_ui[ancestry_key(job.prompt, node_id)] = ui;
    show_ui(node_id, ui);
  };

  auto& ledger = state.devices->ledger();
  const size_t first_stage = ledger.stages().size();
  auto executed_nodes = [&] {
    json ids = json::array();
    for (const auto& node : state.executor->last_report().nodes)
      if (node.outcome == graph::NodeRun::Outcome::kOk ||
          node.outcome == graph::NodeRun::Outcome::kCached)
        ids.push_back(node.node_id);
    return ids;
  };
  auto fail = [&](const std::string& node_id, const std::string& node_type,
                  const std::string& type, const std::string& message) {
    if (ledger.in_stage()) ledger.end_stage(device::StageOutcome::failure(message));
    add_message("execution_error", {{"prompt_id", id},
                                    {"node_id", node_id.empty() ? json(nullptr) : json(node_id)},
                                    {"node_type", node_type},
                                    {"executed", executed_nodes()},
                                    {"exception_message", message},
                                    {"exception_type", type},
                                    {"traceback", json::array()},
                                    {"current_inputs", json::object()},
                                    {"current_outputs", json::array()}});
  };

  std::string report_outcome = "ok", report_error;
  int exit_code = runner::kExitOk;
  try {
    state.executor->run(job.prompt, run);
    send_cached();
    add_message("execution_success", {{"prompt_id", id}});
  } catch (const Cancelled&) {
    if (ledger.in_stage()) ledger.end_stage(device::StageOutcome::failure("cancelled"));
    const auto& nodes = state.executor->last_report().nodes;
    const std::string node_id = nodes.empty() ? "" : nodes.back().node_id;
    const std::string node_type = nodes.empty() ? "" : nodes.back().class_type;
    add_message("execution_interrupted", {{"prompt_id", id},
                                          {"node_id", node_id},
                                          {"node_type", node_type},
                                          {"executed", executed_nodes()}});
    report_outcome = "cancelled";
    report_error = "interrupted";
    exit_code = runner::kExitInterrupted;
  } catch (const graph::NodeError& e) {
    fail(e.node_id(), e.class_type(), exception_type(e.cause()), e.what());
    report_outcome = "error";
    report_error = e.what();
    exit_code = runner::kExitFailure;
  } catch (const graph::InvalidPrompt& e) {
    // The prompt passed when queued but not now (an input file was removed meanwhile).
    const json& errors = e.report().value("node_errors", json::object());
    const std::string node_id = errors.empty() ? "" : errors.begin().key();
    fail(node_id, node_id.empty() ? "" : errors.begin()->value("class_type", ""),
         "wan::InvalidPrompt", e.what());
    report_outcome = "error";
    report_error = e.what();
    exit_code = runner::kExitInvalid;
  } catch (const std::exception& e) {
    fail("", "", exception_type(std::current_exception()), e.what());
    report_outcome = "error";
    report_error = e.what();
    exit_code = runner::kExitFailure;
  }
  const bool ok = report_outcome == "ok";
  outcome.status = {{"status_str", ok ? "success" : "error"},
                    {"completed", ok},
                    {"messages", std::move(messages)}};
  try {
    json ledger_json;
    prompt_ledger(ledger, first_stage, &ledger_json, &outcome.memory_svg);
    outcome.memory_report =
        runner::run_report_json(ledger_json, state.devices->compute().name(),
                                state.executor->last_report(), report_outcome, report_error,
                                exit_code, "prompt " + id);
  } catch (const std::exception& e) {
    spdlog::error("prompt {}: the memory report could not be made: {}", id, e.what());
  }
  // The report is in the outcome (and /history); the stages would only grow with every prompt.
  if (ledger.in_stage()) ledger.end_stage(device::StageOutcome::failure("not ended"));
  ledger.clear_stages();
  return outcome;
}

void Engine::interrupt() { state_->cancel = true; }

std::string Engine::merge_mask_alpha(const std::filesystem::path& original,
                                     const std::string& mask_file) const {
  // Both decoded as LoadImage decodes them (first frame); the 8-bit values come back exactly
  // from v / 255 and 1 - a / 255 by rounding.
  const media::LoadedImage image = media::load_image(original.string());
  const media::LoadedImage mask = media::decode_image(
      reinterpret_cast<const uint8_t*>(mask_file.data()), mask_file.size(), "the uploaded mask");
  const at::Tensor rgb = image.image[0], alpha = mask.mask[0];
  if (rgb.size(0) != alpha.size(0) || rgb.size(1) != alpha.size(1))
    throw ValidationError("the mask is " + std::to_string(alpha.size(1)) + "x" +
                          std::to_string(alpha.size(0)) + " but " + original.filename().string() +
                          " is " + std::to_string(rgb.size(1)) + "x" + std::to_string(rgb.size(0)));
  const at::Tensor rgba = at::cat({(rgb * 255).round(), ((1 - alpha) * 255).round().unsqueeze(-1)},
                                  -1)
                              .clamp(0, 255)
                              .to(at::kByte);
  const std::vector<uint8_t> png = media::encode_rgba_png(rgba, original.filename().string());
  return std::string(png.begin(), png.end());
}

void Engine::free_cache() {
  state_->executor->clear_cache();
  state_->last_ui.clear();
}

json Engine::devices_json() const {
  const auto& compute = state_->devices->compute();
  json devices = json::array();
  const char* type = compute.kind() == device::ComputeKind::kCuda      ? "cuda"
                     : compute.kind() == device::ComputeKind::kVirtual ? "vgpu"
                                                                       : "cpu";
  const int64_t total = compute.bytes_total(), capacity = compute.bytes_capacity();
  const int64_t free = compute.bytes_free();
  json entry = {{"name", compute.name()},
                {"type", type},
                {"index", compute.kind() == device::ComputeKind::kCuda
                              ? json(compute.device().index())
                              : json(nullptr)},
                {"vram_total", total >= 0 ? total : 0},
                {"vram_free", free >= 0 ? free : 0},
                {"torch_vram_total", total >= 0 ? total : 0},
                {"torch_vram_free", free >= 0 ? free : 0},
                {"bytes_total", total >= 0 ? json(total) : json(nullptr)},
                {"bytes_capacity", capacity >= 0 ? json(capacity) : json(nullptr)},
                {"bytes_reserve", total >= 0 && capacity >= 0 ? json(total - capacity)
                                                              : json(nullptr)},
                {"bytes_in_use", compute.bytes_in_use()},
                {"bytes_peak", compute.bytes_peak()}};
  devices.push_back(std::move(entry));
  return devices;
}

std::string Engine::torch_version() const { return TORCH_VERSION; }

}  // namespace wan::server
