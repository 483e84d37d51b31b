#include "runner/runner_options.h"

#include <cstdlib>
#include <functional>
#include <sstream>

namespace wan::runner {

namespace {

struct Flag {
  const char* name;
  const char* value;  // the value's name in --help; nullptr for a switch
  const char* help;
  std::function<void(RunnerOptions&, const std::string&)> target;
};

int parse_threads(const std::string& text) {
  char* end = nullptr;
  const long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < 1 || value > 1024)
    throw UsageError("--threads '" + text + "': expected a whole number from 1 to 1024");
  return static_cast<int>(value);
}

const std::vector<Flag>& flags() {
  static const std::vector<Flag> table = {
      {"--models", "DIR",
       "models folder in ComfyUI's layout: diffusion_models/, text_encoders/, vae/, clip_vision/, "
       "tokenizers/",
       [](RunnerOptions& o, const std::string& v) { o.models_dir = v; }},
      {"--output", "DIR", "where output nodes write (default ./output; created when missing)",
       [](RunnerOptions& o, const std::string& v) { o.output_dir = v; }},
      {"--input", "DIR", "where LoadImage, LoadVideo and WanLoadImageFrames look for relative names (default ./input)",
       [](RunnerOptions& o, const std::string& v) { o.input_dir = v; }},
      {"--temp", "DIR", "where PreviewImage writes (default OUTPUT/temp)",
       [](RunnerOptions& o, const std::string& v) { o.temp_dir = v; }},
      {"--disable-metadata", nullptr,
       "save outputs without the prompt and workflow embedded (ComfyUI's --disable-metadata)",
       [](RunnerOptions& o, const std::string&) { o.disable_metadata = true; }},
      {"--set", "TARGET.INPUT=VALUE",
       "set a widget input; TARGET is a node id, a title or a class_type that occurs once "
       "(repeatable)",
       [](RunnerOptions& o, const std::string& v) { o.overrides.push_back(v); }},
      {"--device", "D", "compute device: auto (CUDA when present, else CPU), cpu, cuda or cuda:N",
       [](RunnerOptions& o, const std::string& v) { o.device = v; }},
      {"--vram", "SIZE", "behave as a card of SIZE (e.g. 12GiB, 800MiB); on a CPU-only machine too",
       [](RunnerOptions& o, const std::string& v) { o.vram = v; }},
      {"--reserve", "SIZE", "memory the runtime itself holds on the card (default 0.5GiB)",
       [](RunnerOptions& o, const std::string& v) { o.reserve = v; }},
      {"--page-lock", "SIZE",
       "CPU memory `stream` may page-lock on CUDA so that block copies overlap compute (default: "
       "half of physical memory; 0: none, the copies are then pageable)",
       [](RunnerOptions& o, const std::string& v) { o.page_lock = v; }},
      {"--plan", nullptr,
       "predict the memory timeline from file headers and run nothing heavy; exit 3 when it "
       "foresees an out-of-memory",
       [](RunnerOptions& o, const std::string&) { o.plan = true; }},
      {"--preset", "NAME", "with --plan: use the official checkpoints' shapes instead of the files",
       [](RunnerOptions& o, const std::string& v) { o.preset = v; }},
      {"--report", "FILE.json",
       "write the memory report (per node: bytes held and peak per device, model locations, time, "
       "outcome) and FILE.svg",
       [](RunnerOptions& o, const std::string& v) { o.report = v; }},
      {"--object-info", nullptr,
       "print every node's schema as ComfyUI's /object_info JSON and exit",
       [](RunnerOptions& o, const std::string&) { o.object_info = true; }},
      {"--threads", "N", "CPU threads for LibTorch (default: LibTorch's choice)",
       [](RunnerOptions& o, const std::string& v) { o.threads = parse_threads(v); }},
      {"--verbose", nullptr, "log each step and block (debug level)",
       [](RunnerOptions& o, const std::string&) { o.verbose = true; }},
      {"--help", nullptr, "show this help",
       [](RunnerOptions& o, const std::string&) { o.help = true; }},
  };
  return table;
}

const Flag* find_flag(const std::string& name) {
  for (const auto& flag : flags())
    if (name == flag.name || (name == "-h" && std::string(flag.name) == "--help")) return &flag;
  return nullptr;
}

}  // namespace

RunnerOptions parse_runner_options(const std::vector<std::string>& args) {
  RunnerOptions options;
  bool positional_only = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (positional_only || arg.size() < 2 || arg[0] != '-') {
      if (!options.workflow.empty())
        throw UsageError("unexpected argument '" + arg + "': the workflow is already '" +
                         options.workflow.string() + "'");
      options.workflow = arg;
      continue;
    }
    if (arg == "--") {
      positional_only = true;
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    const Flag* flag = find_flag(name);
    if (!flag) throw UsageError("unknown option '" + name + "'");
    if (!flag->value) {
      if (eq != std::string::npos) throw UsageError(name + " takes no value");
      flag->target(options, "");
      continue;
    }
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      throw UsageError(name + " needs a value: " + name + " " + flag->value);
    }
    flag->target(options, value);
  }
  return options;
}

RunnerOptions parse_runner_options(int argc, const char* const* argv) {
  return parse_runner_options(std::vector<std::string>(argv + (argc > 0 ? 1 : 0), argv + argc));
}

void RunnerOptions::validate() const {
  if (help || object_info) return;
  if (workflow.empty()) throw UsageError("no workflow given: wan-run WORKFLOW.json --models DIR");
  if (models_dir.empty()) throw UsageError("--models DIR is required");
  if (!preset.empty() && !plan) throw UsageError("--preset only applies with --plan");
}

device::ComputeDeviceOptions RunnerOptions::device_options() const {
  device::ComputeDeviceOptions options;
  options.device = device;
  if (!vram.empty()) options.vram = device::parse_size(vram);
  if (!reserve.empty()) options.reserve = device::parse_size(reserve);
  if (!page_lock.empty()) options.page_lock = device::parse_size(page_lock);
  return options;
}

std::string runner_usage() {
  std::ostringstream out;
  out << "usage: wan-run WORKFLOW.json --models DIR [options]\n"
         "       wan-run --object-info [--models DIR]\n\n"
         "Runs a ComfyUI workflow (API prompt or UI workflow JSON) of wan-native nodes "
         "headless.\n\n"
         "options:\n";
  for (const auto& flag : flags()) {
    std::string left = std::string("  ") + flag.name;
    if (flag.value) left += std::string(" ") + flag.value;
    out << left;
    if (left.size() < 28) {
      out << std::string(28 - left.size(), ' ');
    } else {
      out << "\n" << std::string(28, ' ');
    }
    out << flag.help << "\n";
  }
  out << "\nexit codes: 0 ok; 2 invalid workflow or command line (nothing ran); 3 runtime failure "
         "(e.g. out of memory); 130 interrupted\n";
  return out.str();
}

}  // namespace wan::runner
