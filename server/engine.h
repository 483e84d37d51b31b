// The engine behind wan-serve, behind a header without torch: the node registry, one device
// manager and one executor whose cache lives between prompts (a new seed re-runs Sample onwards),
// exactly as wan-run builds them (runner/runner.h). Only engine.cpp includes ATen.
#pragma once
#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace wan::server {

// The engine settings, as wan-run's flags (--models, --output, --input, --temp, --device,
// --vram, --reserve, --threads, --disable-metadata, --verbose), parsed by wan-run's own table.
struct EngineFolders {
  std::filesystem::path models, output, input, temp;
};

// A prompt /prompt accepted.
struct PromptJob {
  std::string prompt_id;
  double number = 0;
  nlohmann::json prompt;      // API prompt, validated
  nlohmann::json extra_data;  // as posted (client_id added), shown in /queue and /history
  std::vector<std::string> outputs;
  std::string client_id;
  nlohmann::ordered_json embedded_prompt, extra_pnginfo;  // what output files embed
};

// What a finished prompt leaves in /history.
struct PromptOutcome {
  nlohmann::json outputs = nlohmann::json::object();  // node id -> ui
  nlohmann::json meta = nlohmann::json::object();     // node id -> {node_id, display_node, ...}
  nlohmann::json status;  // {"status_str", "completed", "messages": [[event, data], ...]}
  nlohmann::json memory_report;  // the runner's --report JSON for this prompt
  std::string memory_svg;        // its timeline chart
};

// The result of checking a prompt (validation runs on the HTTP threads).
struct PromptCheck {
  bool ok = false;
  nlohmann::json error, node_errors = nlohmann::json::object();
  std::vector<std::string> outputs;
};

class Engine {
 public:
  // `engine_args`: wan-run flags (see above). Builds the device manager. Throws
  // wan::ValidationError (a bad flag or size, --models not a folder) or wan::Error.
  explicit Engine(const std::vector<std::string>& engine_args);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const EngineFolders& folders() const;
  bool verbose() const;

  // ComfyUI's /object_info (combos list the model and input folders now).
  nlohmann::json object_info() const;
  // The model folders the schemas name, sorted, and the files in one of them.
  std::vector<std::string> model_folders() const;
  std::vector<std::string> model_files(const std::string& folder) const;

  // `workflow`: an API prompt or a UI workflow (converted as the frontend would). Never throws.
  PromptCheck check(const nlohmann::json& workflow, nlohmann::json* api_prompt) const;
  // `prompt` keyed in the order of `body_text` (the /prompt request body it came from).
  void embed(PromptJob& job, const std::string& body_text) const;

  // A message for the prompt's client: ComfyUI's event name and data.
  using Emit = std::function<void(const std::string& event, const nlohmann::json& data)>;
  // Runs one prompt (on the executor thread only), emitting ComfyUI's messages in its order:
  // execution_start, execution_cached, executing/progress/executed per node, then
  // execution_success, execution_error or execution_interrupted. Never throws.
  // `preview`, when set, receives a latent preview after each sampling step: ComfyUI's binary
  // socket message (big-endian event 1 PREVIEW_IMAGE, format 1 JPEG, then the JPEG bytes).
  using EmitPreview = std::function<void(const std::string& message)>;
  PromptOutcome run(const PromptJob& job, const Emit& emit, const EmitPreview& preview = {});
  // Raises the cancel flag of the running prompt (any thread); the next run lowers it.
  void interrupt();
  // Drops every cached output (POST /free); executor thread only, between prompts.
  void free_cache();

  // /system_stats "devices": the compute device with its budget, then the CPU.
  nlohmann::json devices_json() const;
  std::string torch_version() const;
  // /upload/mask: the PNG bytes of `original` (an image file) with the alpha channel of the
  // uploaded `mask_file` bytes, as ComfyUI merges them (the mask's alpha, 255 where it has
  // none). Throws ValidationError naming both when either cannot be decoded or their sizes differ.
  std::string merge_mask_alpha(const std::filesystem::path& original,
                               const std::string& mask_file) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace wan::server
