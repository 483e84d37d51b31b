// Runs the real wan-run binary for the runner tests and collects what it left behind.
// Header-only: the test target globs *_test.cpp.
#pragma once
#include <ATen/ATen.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "graph/node_registry.h"
#include "graph/workflow_json.h"
#include "io/tensor_index.h"
#include "nodes/wan_nodes.h"

extern char** environ;

namespace wan::runner::testing {

namespace fs = std::filesystem;
using nlohmann::json;

inline fs::path wan_run_path() { return WAN_RUN_PATH; }
inline fs::path data_dir() { return WAN_TEST_DATA_DIR; }
inline fs::path models_dir() { return data_dir() / "models"; }
inline fs::path inputs_dir() { return data_dir() / "wan-tiny" / "inputs"; }
inline fs::path workflows_dir() { return data_dir().parent_path().parent_path() / "workflows"; }
inline fs::path workflow_path(const std::string& task, const std::string& config) {
  return workflows_dir() / task / (config + ".json");
}

inline const std::vector<std::string>& tasks() {
  static const std::vector<std::string> names = {"t2v", "i2v", "flf2v", "vace"};
  return names;
}
inline const std::vector<std::string>& configs() {
  static const std::vector<std::string> names = {"baseline", "vae_cpu", "t5_cpu", "vae_cpu_t5_cpu"};
  return names;
}

// A fresh, empty folder under the system temp dir, removed by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(fs::temp_directory_path() /
              ("wan_run_test_" + std::to_string(getpid()) + "_" + name)) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

struct RunResult {
  int exit_code = -1;
  std::string out, err;  // stdout, stderr
  // The ComfyUI-style {"error", "node_errors"} JSON printed last on stderr, or null.
  json error_json() const {
    const size_t start = err.rfind("\n{\n");
    const size_t begin =
        start == std::string::npos ? (err.rfind("{\n", 0) == 0 ? 0 : err.size()) : start + 1;
    if (begin >= err.size()) return json();
    return json::parse(err.substr(begin), nullptr, /*allow_exceptions=*/false);
  }
};

inline std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline std::vector<char*> make_argv(std::vector<std::string>& storage) {
  std::vector<char*> argv;
  for (auto& arg : storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  return argv;
}

inline int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Runs wan-run with `args` (stdout and stderr to files, so neither can fill a pipe); waits.
inline RunResult run_wan(const std::vector<std::string>& args) {
  static int counter = 0;
  const fs::path base = fs::temp_directory_path() / ("wan_run_io_" + std::to_string(getpid()) +
                                                     "_" + std::to_string(counter++));
  const std::string out_path = base.string() + ".out", err_path = base.string() + ".err";
  std::vector<std::string> storage = {wan_run_path().string()};
  storage.insert(storage.end(), args.begin(), args.end());
  auto argv = make_argv(storage);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  pid_t pid = -1;
  RunResult result;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    ADD_FAILURE() << "cannot start " << argv[0] << ": " << std::strerror(rc);
    return result;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = decode_status(status);
  result.out = read_text(out_path);
  result.err = read_text(err_path);
  fs::remove(out_path);
  fs::remove(err_path);
  return result;
}

// A wan-run started in the background with its stderr on a pipe.
struct Child {
  pid_t pid = -1;
  int err_fd = -1;
};

inline Child spawn_wan(const std::vector<std::string>& args) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  std::vector<std::string> storage = {wan_run_path().string()};
  storage.insert(storage.end(), args.begin(), args.end());
  auto argv = make_argv(storage);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  Child child;
  const int rc = posix_spawn(&child.pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) throw std::runtime_error(std::string("cannot start wan-run: ") + std::strerror(rc));
  child.err_fd = fds[0];
  return child;
}

// Reads the child's stderr until `needle` appears (true) or the pipe closes (false).
inline bool wait_for_output(const Child& child, const std::string& needle, std::string* seen) {
  char buffer[4096];
  while (seen->find(needle) == std::string::npos) {
    const ssize_t n = read(child.err_fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    seen->append(buffer, static_cast<size_t>(n));
  }
  return true;
}

// Drains stderr until the child exits; returns its exit code (128 + signal when killed).
inline int wait_child(const Child& child, std::string* rest) {
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(child.err_fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    rest->append(buffer, static_cast<size_t>(n));
  }
  close(child.err_fd);
  int status = 0;
  while (waitpid(child.pid, &status, 0) < 0 && errno == EINTR) {
  }
  return decode_status(status);
}

// The tiny video size used for each task (the e2e goldens' sizes; frames cut for flf2v).
struct TinySize {
  int64_t width, height, frames;
};
inline TinySize tiny_size(const std::string& task) {
  if (task == "i2v") return {64, 48, 9};
  if (task == "flf2v") return {32, 32, 9};
  return {64, 64, 9};
}

// The --set overrides that point a shipped workflow of `task` at the tiny models and inputs,
// sized and stepped small. `fp32`: every model in float32, as the goldens were made.
inline std::vector<std::string> tiny_overrides(const std::string& task, bool fp32,
                                               int64_t steps = 2) {
  std::vector<std::string> sets = {
      "LoadDiT.model_name=dit_" + task + "_tiny.safetensors",
      "LoadT5.model_name=t5_tiny_encoder.pth",
      "LoadT5.tokenizer=wan_tiny",
      "LoadVAE.model_name=vae_tiny.pth",
      "Sample.steps=" + std::to_string(steps),
  };
  if (fp32) {
    sets.push_back("LoadT5.dtype=fp32");
    sets.push_back("LoadDiT.weight_dtype=fp32");
    sets.push_back("LoadDiT.compute_dtype=fp32");
  }
  const TinySize size = tiny_size(task);
  std::vector<std::string> sized = {"Sample"};
  if (task == "i2v") sized.push_back("ImageToVideo");
  if (task == "flf2v") sized.push_back("FirstLastFrameToVideo");
  if (task == "vace") sized.push_back("VaceToVideo");
  for (const auto& node : sized) {
    sets.push_back(node + ".width=" + std::to_string(size.width));
    sets.push_back(node + ".height=" + std::to_string(size.height));
    sets.push_back(node + ".frames=" + std::to_string(size.frames));
  }
  const std::string inputs = inputs_dir().string() + "/";
  if (task == "i2v" || task == "flf2v") {
    sets.push_back("LoadCLIPVision.model_name=clip_tiny.pth");
    if (fp32) sets.push_back("LoadCLIPVision.dtype=fp32");
  }
  if (task == "i2v") sets.push_back("start image.image=" + inputs + "i2v_image.png");
  if (task == "flf2v") {
    sets.push_back("start image.image=" + inputs + "flf2v_first.png");
    sets.push_back("end image.image=" + inputs + "flf2v_last.png");
  }
  if (task == "vace") {
    sets.push_back("control video.frames=" + inputs + "vace_src_frame_*.png");
    sets.push_back("control masks.frames=" + inputs + "vace_src_mask_*.png");
    sets.push_back("reference image.image=" + inputs + "vace_ref.png");
  }
  return sets;
}

// "--set" before each assignment, after `head`.
inline std::vector<std::string> with_sets(std::vector<std::string> head,
                                          const std::vector<std::string>& sets) {
  for (const auto& set : sets) {
    head.push_back("--set");
    head.push_back(set);
  }
  return head;
}

// The regular files under `dir` (not recursive) whose names end with `suffix`, sorted.
inline std::vector<fs::path> files_with_suffix(const fs::path& dir, const std::string& suffix) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      found.push_back(entry.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

// Every file under `dir`, recursively (to check that a failed run wrote nothing).
inline std::vector<fs::path> all_files(const fs::path& dir) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(dir, ec))
    if (entry.is_regular_file()) found.push_back(entry.path());
  return found;
}

// `task`'s shipped UI workflow converted to an API prompt (ComfyUI's "Save (API)"), plus a
// SaveTensor of Decode's frames (prefix "frames"), written to `path`.
inline void write_api_prompt_with_frames(const std::string& task, const std::string& config,
                                         const fs::path& path) {
  const auto& registry = wan::nodes::wan_node_registry();
  json prompt = graph::to_api_prompt(graph::read_json_file(workflow_path(task, config)), registry);
  std::string decode;
  for (const auto& [id, node] : prompt.items())
    if (node["class_type"] == "Decode") decode = id;
  ASSERT_FALSE(decode.empty()) << "no Decode node in " << task << "/" << config;
  prompt["900"] = {
      {"class_type", "SaveTensor"},
      {"inputs", {{"tensor", json::array({decode, 0})}, {"filename_prefix", "frames"}}},
      {"_meta", {{"title", "frames"}}}};
  std::ofstream(path) << prompt.dump(2);
}

// The single frames_*.safetensors SaveTensor wrote under `dir`: IMAGE [F, H, W, 3] in [0, 1].
inline at::Tensor saved_frames(const fs::path& dir) {
  const auto files = files_with_suffix(dir, ".safetensors");
  if (files.size() != 1) {
    ADD_FAILURE() << "expected one .safetensors under " << dir << ", found " << files.size();
    return at::Tensor();
  }
  return io::load_tensors(files[0].string()).at("tensor");
}

}  // namespace wan::runner::testing
