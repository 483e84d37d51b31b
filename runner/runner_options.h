// Command-line options of `wan-run`, parsed from a table of {flag, value name, help, target}
// so that --help and the parser cannot disagree.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "device/compute_device.h"

namespace wan::runner {

// A command line that does not parse; the runner prints it with a pointer to --help, exit 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

struct RunnerOptions {
  std::filesystem::path workflow;    // positional: API prompt or UI workflow JSON
  std::filesystem::path models_dir;  // --models: ComfyUI layout
  std::filesystem::path output_dir = "output";
  std::filesystem::path input_dir = "input";
  std::filesystem::path temp_dir;  // --temp; empty = <output>/temp (PreviewImage's files)
  bool disable_metadata = false;   // --disable-metadata: no prompt/workflow in saved files
  std::vector<std::string> overrides;  // --set TARGET.INPUT=VALUE, applied in order
  std::string device = "auto";
  std::string vram;     // --vram text; empty = the device's own size
  std::string reserve;  // --reserve text; empty = kDefaultReserve
  std::string page_lock;  // --page-lock text; empty = device::default_page_lock()
  bool plan = false;
  std::string preset;            // --preset: official checkpoint shapes for --plan
  std::filesystem::path report;  // --report FILE.json (+ FILE.svg)
  bool object_info = false;
  int threads = 0;  // 0 = what LibTorch picks
  bool verbose = false;
  bool help = false;

  // Checks what the table cannot: required flags, flag combinations. Throws UsageError.
  void validate() const;
  // The compute device settings; throws wan::ValidationError for an unparsable size.
  device::ComputeDeviceOptions device_options() const;
};

// Parses argv (argv[0] is skipped). Accepts `--flag VALUE` and `--flag=VALUE`; --set may repeat.
// Throws UsageError naming the argument.
RunnerOptions parse_runner_options(int argc, const char* const* argv);
RunnerOptions parse_runner_options(const std::vector<std::string>& args);

// The --help text, generated from the same table.
std::string runner_usage();

}  // namespace wan::runner
