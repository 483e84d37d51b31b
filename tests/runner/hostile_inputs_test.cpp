// wan-run against hostile input, on the real binary: every case ends with exit 2 (the workflow or
// its inputs) or 3 (a runtime failure) and a message, never a crash, a hang or a leftover file.
// Bad values are generated here (random where a rule has many cases; the seed is printed), so
// the checks hold for inputs no one picked by hand.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "runner_test_util.h"

namespace wan::runner::testing {
namespace {

// A run of `args` killed after `seconds`; exit_code -2 then.
RunResult run_wan_within(const std::vector<std::string>& args, int seconds) {
  const fs::path base = fs::temp_directory_path() /
                        ("wan_hostile_io_" + std::to_string(getpid()) + "_" +
                         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  const std::string out_path = base.string() + ".out", err_path = base.string() + ".err";
  std::vector<std::string> storage = {wan_run_path().string()};
  storage.insert(storage.end(), args.begin(), args.end());
  auto argv = make_argv(storage);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  RunResult result;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    ADD_FAILURE() << "cannot start wan-run: " << std::strerror(rc);
    return result;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  int status = 0;
  for (;;) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      result.exit_code = decode_status(status);
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.exit_code = -2;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  result.out = read_text(out_path);
  result.err = read_text(err_path);
  fs::remove(out_path);
  fs::remove(err_path);
  return result;
}

std::vector<std::string> t2v_args(const fs::path& output, const fs::path& models,
                                  std::vector<std::string> extra_sets = {}) {
  auto sets = tiny_overrides("t2v", /*fp32=*/true);
  sets.insert(sets.end(), extra_sets.begin(), extra_sets.end());
  return with_sets({workflow_path("t2v", "baseline").string(), "--models", models.string(),
                    "--output", output.string()},
                   sets);
}

// The input names of every node error in the printed ComfyUI report.
std::set<std::string> failed_inputs(const RunResult& result) {
  std::set<std::string> names;
  const json report = result.error_json();
  if (!report.is_object() || !report.contains("node_errors")) return names;
  for (const auto& [id, node] : report["node_errors"].items())
    for (const auto& error : node["errors"])
      if (error["extra_info"].contains("input_name"))
        names.insert(error["extra_info"]["input_name"].get<std::string>());
  return names;
}

// Loaders log "LoadDiT (node 1): loaded <path> ..." once a model is in memory
// (nodes/node_support.h log_loaded; HostileInputs.AValidRunLogsItsLoads checks it appears).
bool loaded_a_model(const RunResult& result) {
  for (const char* loader : {"LoadDiT (node ", "LoadT5 (node ", "LoadVAE (node ", "LoadCLIPVision (node "}) {
    for (size_t at = result.err.find(loader); at != std::string::npos;
         at = result.err.find(loader, at + 1)) {
      const size_t close = result.err.find("): loaded ", at);
      if (close != std::string::npos && close < result.err.find('\n', at)) return true;
    }
  }
  return false;
}

bool is_leftover(const fs::path& path) {
  const std::string name = path.filename().string();
  return name.find(".partial") != std::string::npos ||
         (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0);
}

// Every file and folder under `dir` whose name marks an unfinished write.
std::vector<fs::path> leftovers(const fs::path& dir, bool recursive = true) {
  std::vector<fs::path> found;
  std::error_code ec;
  if (recursive) {
    for (const auto& entry : fs::recursive_directory_iterator(dir, ec))
      if (is_leftover(entry.path())) found.push_back(entry.path());
  } else {
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (is_leftover(entry.path())) found.push_back(entry.path());
  }
  return found;
}

// A private copy of the tiny models (symlinks into tests/data would point out of it).
fs::path copy_models(const TempDir& dir) {
  const fs::path models = dir / "models";
  fs::copy(models_dir(), models, fs::copy_options::recursive);
  return models;
}

class HostileInputs : public ::testing::Test {
 protected:
  HostileInputs() {
    const auto seed = std::random_device{}();
    std::printf("random seed %u\n", seed);
    rng_.seed(seed);
  }
  std::mt19937 rng_;
};

TEST_F(HostileInputs, WorkflowThatIsNotARegularFileExitsTwo) {
  TempDir dir("not_regular");
  fs::create_directories(dir / "a_folder.json");
  ASSERT_EQ(mkfifo((dir / "fifo.json").c_str(), 0600), 0);
  for (const fs::path& workflow :
       {dir / "a_folder.json", dir / "fifo.json", fs::path("/proc/self/mem"), dir / "missing.json",
        fs::path("/dev/zero")}) {
    const auto result =
        run_wan_within({workflow.string(), "--models", models_dir().string(), "--output",
                        (dir / "output").string()},
                       60);
    EXPECT_EQ(result.exit_code, 2) << workflow << "\n" << result.err;
    EXPECT_NE(result.err.find(workflow.filename().string()), std::string::npos) << result.err;
  }
}

// The control for every "nothing was loaded" check below: a valid run's log shows its loads.
TEST_F(HostileInputs, AValidRunLogsItsLoads) {
  TempDir dir("valid");
  const auto result = run_wan_within(t2v_args(dir / "output", models_dir(), {}), 300);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(loaded_a_model(result)) << result.err;
}

TEST_F(HostileInputs, InvalidUtf8AnywhereExitsTwoAndPrintsValidJson) {
  TempDir dir("utf8");
  std::uniform_int_distribution<int> high(0x80, 0xff);
  for (int i = 0; i < 4; ++i) {
    std::string bad = "x";
    bad += static_cast<char>(high(rng_));
    bad += static_cast<char>(high(rng_) & 0xbf);  // never a valid continuation pair by chance
    bad += "\xff";
    for (const std::string& assignment :
         {"SaveVideo.filename_prefix=" + bad, "LoadDiT.model_name=" + bad + ".safetensors",
          "positive.text=" + bad}) {
      const auto result = run_wan_within(
          t2v_args(dir / "output", models_dir(), {assignment}), 120);
      EXPECT_EQ(result.exit_code, 2) << assignment << "\n" << result.err;
      EXPECT_FALSE(loaded_a_model(result)) << result.err;
    }
  }
  // In a file name: the workflow itself.
  const fs::path odd = dir / "wf\xff\xfe.json";
  std::ofstream(odd) << "{";
  const auto result = run_wan_within({odd.string(), "--models", models_dir().string()}, 60);
  EXPECT_EQ(result.exit_code, 2) << result.err;
}

// Valid JSON nested `depth` levels, as the value of `input` of node `id` in an API prompt.
std::string deep_prompt_text(const fs::path& api_source, const std::string& where, int depth) {
  std::string text = read_text(api_source);
  std::string deep(depth, '[');
  deep += "1";
  deep += std::string(depth, ']');
  const size_t at = text.find(where);
  if (at == std::string::npos) return text;
  return text.substr(0, at) + "\"deep\": " + deep + ", " + text.substr(at);
}

TEST_F(HostileInputs, DeepValuesAndDeepMetaExitTwoBeforeAnythingRuns) {
  TempDir dir("deep");
  const fs::path api = dir / "api.json";
  write_api_prompt_with_frames("t2v", "baseline", api);
  std::uniform_int_distribution<int> shallow(40, 250), steep(1000, 100000);
  for (int depth : {shallow(rng_), steep(rng_)}) {
    for (const char* where : {"\"title\"", "\"class_type\""}) {
      const fs::path file = dir / ("deep_" + std::to_string(depth) + ".json");
      std::ofstream(file) << deep_prompt_text(api, where, depth);
      const auto result = run_wan_within(
          {file.string(), "--models", models_dir().string(), "--output", (dir / "out").string()},
          120);
      EXPECT_EQ(result.exit_code, 2) << depth << " " << where << "\n" << result.err.substr(0, 4000);
      EXPECT_LT(result.err.size(), 200000u) << "stderr must stay short";
      EXPECT_FALSE(loaded_a_model(result));
      EXPECT_TRUE(all_files(dir / "out").empty());
    }
  }
}

TEST_F(HostileInputs, ShapeRulesAreCheckedBeforeAnyModelLoads) {
  TempDir dir("shapes");
  std::uniform_int_distribution<int> any(1, 400);
  for (int i = 0; i < 3; ++i) {
    int frames = any(rng_), width = any(rng_);
    if (frames % 4 == 1) ++frames;
    if (width % 16 == 0) ++width;
    const auto result = run_wan_within(
        t2v_args(dir / "output", models_dir(),
                 {"Sample.frames=" + std::to_string(frames), "Sample.width=" + std::to_string(width)}),
        120);
    EXPECT_EQ(result.exit_code, 2) << result.err;
    const auto failed = failed_inputs(result);
    EXPECT_TRUE(failed.count("frames")) << frames << "\n" << result.err;
    EXPECT_TRUE(failed.count("width")) << width << "\n" << result.err;
    EXPECT_FALSE(loaded_a_model(result)) << result.err;
    EXPECT_TRUE(all_files(dir.path()).empty());
  }
}

TEST_F(HostileInputs, OutputPrefixesAndFoldersAreCheckedBeforeAnyModelLoads) {
  TempDir dir("prefixes");
  std::ofstream(dir / "a_file") << "x";
  struct Case {
    std::string set;
    fs::path output;
  };
  for (const auto& c : std::vector<Case>{
           {"SaveVideo.filename_prefix=../escape", dir / "output"},
           {"SaveVideo.filename_prefix=a/../../escape", dir / "output"},
           {"SaveVideo.filename_prefix=" + (dir / "abs").string(), dir / "output"},
           {"SaveVideo.filename_prefix=", dir / "output"},
           {"SaveVideo.filename_prefix=wan", dir / "a_file" / "output"}}) {
    const auto result = run_wan_within(t2v_args(c.output, models_dir(), {c.set}), 120);
    EXPECT_EQ(result.exit_code, 2) << c.set << "\n" << result.err;
    EXPECT_TRUE(failed_inputs(result).count("filename_prefix")) << result.err;
    EXPECT_FALSE(loaded_a_model(result)) << result.err;
  }
  EXPECT_FALSE(fs::exists(dir / "escape"));
  EXPECT_FALSE(fs::exists(dir / "abs"));
}

TEST_F(HostileInputs, ModelsOutsideTheirFolderAreRefusedBeforeLoading) {
  TempDir dir("escape");
  const fs::path models = copy_models(dir);
  const fs::path dits = models / "diffusion_models";
  fs::copy_file(dits / "dit_t2v_tiny.safetensors", dir / "outside.safetensors");
  fs::copy_file(dits / "dit_t2v_tiny_config.json", dir / "outside_config.json");
  fs::create_symlink(dir / "outside.safetensors", dits / "linked_out.safetensors");
  fs::create_symlink(dir / "outside_config.json", dits / "linked_out_config.json");
  // A sharded index whose only shard links out of the folder.
  fs::create_symlink(dir / "outside.safetensors", dits / "shard-00001-of-00001.safetensors");
  const auto header = io::read_tensor_infos((dits / "dit_t2v_tiny.safetensors").string());
  json index = {{"metadata", json::object()}, {"weight_map", json::object()}};
  for (const auto& info : header) index["weight_map"][info.name] = "shard-00001-of-00001.safetensors";
  std::ofstream(dits / "sharded.safetensors.index.json") << index.dump();
  // A symlink loop in the folder must not hang the listing.
  fs::create_symlink(dits, dits / "loop");

  for (const char* name : {"linked_out.safetensors", "sharded.safetensors.index.json",
                                 "../diffusion_models/dit_t2v_tiny.safetensors", "loop/linked_out.safetensors"}) {
    const auto result = run_wan_within(
        t2v_args(dir / "output", models, {std::string("LoadDiT.model_name=") + name}), 120);
    EXPECT_EQ(result.exit_code, 2) << name << "\n" << result.err;
    EXPECT_TRUE(failed_inputs(result).count("model_name")) << result.err;
    EXPECT_FALSE(loaded_a_model(result)) << result.err;
  }
  // The listing neither hangs nor shows outside targets.
  const auto info = run_wan_within({"--object-info", "--models", models.string()}, 60);
  ASSERT_EQ(info.exit_code, 0) << info.err;
  const auto names = json::parse(info.out)["LoadDiT"]["input"]["required"]["model_name"][0];
  for (const auto& name : names) {
    EXPECT_EQ(name.get<std::string>().find(".."), std::string::npos) << name;
    EXPECT_NE(name.get<std::string>(), "linked_out.safetensors");
  }
}

TEST_F(HostileInputs, PlanOnATruncatedOrHostileWeightFileNamesTheFile) {
  TempDir dir("plan_hostile");
  const fs::path models = copy_models(dir);
  const fs::path dit = models / "diffusion_models" / "dit_t2v_tiny.safetensors";
  const std::string bytes = read_text(dit);
  std::uniform_int_distribution<size_t> cut(1, bytes.size() - 1);
  std::vector<std::string> variants = {bytes.substr(0, 8), bytes.substr(0, cut(rng_)),
                                       bytes.substr(0, cut(rng_))};
  // A header length far past the end of the file.
  std::string huge = bytes;
  for (int i = 0; i < 8; ++i) huge[i] = static_cast<char>(0x7f);
  variants.push_back(huge);
  // Random garbage of the same length.
  std::string garbage(bytes.size(), '\0');
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& c : garbage) c = static_cast<char>(byte(rng_));
  variants.push_back(garbage);
  for (size_t i = 0; i < variants.size(); ++i) {
    std::ofstream(dit, std::ios::binary | std::ios::trunc) << variants[i];
    auto args = t2v_args(dir / "output", models);
    args.insert(args.end(), {"--plan", "--vram", "1GiB", "--reserve", "0"});
    const auto result = run_wan_within(args, 120);
    EXPECT_TRUE(result.exit_code == 2 || result.exit_code == 3)
        << "variant " << i << " exit " << result.exit_code << "\n" << result.err;
    EXPECT_NE(result.err.find("dit_t2v_tiny.safetensors"), std::string::npos)
        << "variant " << i << "\n" << result.err;
  }
}

TEST_F(HostileInputs, ReportOnAFullDiskFailsTheRunAndLeavesNoTempFile) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  TempDir dir("full_disk");
  auto args = t2v_args(dir / "output", models_dir());
  args.insert(args.end(), {"--report", "/dev/full"});
  const auto result = run_wan_within(args, 300);
  EXPECT_NE(result.exit_code, 0) << result.err;
  EXPECT_TRUE(result.exit_code == 3) << result.err;
  EXPECT_NE(result.err.find("/dev/full"), std::string::npos) << result.err;
  EXPECT_TRUE(leftovers("/dev", /*recursive=*/false).empty());
  EXPECT_FALSE(fs::exists("/dev/full.svg"));
  EXPECT_TRUE(leftovers(dir.path()).empty());
  // A report folder that cannot exist fails the same way.
  std::ofstream(dir / "a_file") << "x";
  auto blocked = t2v_args(dir / "output2", models_dir());
  blocked.insert(blocked.end(), {"--report", (dir / "a_file" / "run.json").string()});
  const auto blocked_result = run_wan_within(blocked, 300);
  EXPECT_EQ(blocked_result.exit_code, 3) << blocked_result.err;
}

// SIGTERM and SIGHUP stop like SIGINT: at the next step, report written, exit 128 + signal, no
// temporary file; a second signal right after the first leaves at once, still without one.
TEST_F(HostileInputs, TermAndHupStopTheRunAndLeaveNoTempFiles) {
  struct Case {
    int first, second;  // second 0: none
    int expected;
  };
  for (const auto& c : std::vector<Case>{{SIGTERM, 0, 143}, {SIGHUP, 0, 129}, {SIGINT, SIGTERM, 143}}) {
    TempDir dir("signals_" + std::to_string(c.first) + "_" + std::to_string(c.second));
    auto sets = tiny_overrides("t2v", true, /*steps=*/1000);
    sets.insert(sets.end(), {"Sample.frames=33", "Sample.width=128", "Sample.height=128"});
    auto args = with_sets({workflow_path("t2v", "baseline").string(), "--models",
                           models_dir().string(), "--output", (dir / "output").string(),
                           "--report", (dir / "report.json").string()},
                          sets);
    const Child child = spawn_wan(args);
    std::string err;
    const bool sampling = wait_for_output(child, "step 1/1000", &err);
    kill(child.pid, c.first);
    if (c.second) kill(child.pid, c.second);
    const int code = wait_child(child, &err);
    ASSERT_TRUE(sampling) << err;
    // Two signals back to back: the second exits at once with its own code, unless the first
    // had already finished the run's cleanup.
    if (c.second)
      EXPECT_TRUE(code == c.expected || code == 128 + c.first) << code << "\n" << err;
    else
      EXPECT_EQ(code, c.expected) << err;
    EXPECT_TRUE(leftovers(dir.path()).empty());
    EXPECT_TRUE(all_files(dir / "output").empty());
    if (!c.second) {
      const auto report = json::parse(read_text(dir / "report.json"));
      EXPECT_EQ(report["outcome"], "cancelled");
      EXPECT_EQ(report["exit_code"], c.expected);
    }
  }
}

// A second signal while an output is being written removes its temporary before leaving.
TEST_F(HostileInputs, SecondSignalDuringASaveRemovesTheTemporary) {
  TempDir dir("second_signal");
  auto args = t2v_args(dir / "output", models_dir());
  const Child child = spawn_wan(args);
  std::string err;
  const bool saving = wait_for_output(child, "SaveVideo (node", &err);
  kill(child.pid, SIGTERM);
  kill(child.pid, SIGTERM);
  const int code = wait_child(child, &err);
  ASSERT_TRUE(saving) << err;
  EXPECT_TRUE(code == 143 || code == 0) << code << "\n" << err;  // 0: it finished first
  EXPECT_TRUE(leftovers(dir.path()).empty());
}

TEST_F(HostileInputs, AHugeWorkflowIsEmbeddedInLinearTime) {
  TempDir dir("huge");
  const fs::path api = dir / "api.json";
  write_api_prompt_with_frames("t2v", "baseline", api);
  json prompt = json::parse(read_text(api));
  std::uniform_int_distribution<int> extra(30000, 50000);
  const int count = extra(rng_);
  // Unconnected nodes never run, but the whole prompt is embedded in every output.
  for (int i = 0; i < count; ++i)
    prompt["x" + std::to_string(i)] = {{"class_type", "Decode"},
                                       {"inputs", {{"samples", json::array({"nowhere", 0})}}}};
  const fs::path big = dir / "big.json";
  std::ofstream(big) << prompt.dump();
  auto sets = tiny_overrides("t2v", true);
  const auto start = std::chrono::steady_clock::now();
  const auto result = run_wan_within(
      with_sets({big.string(), "--models", models_dir().string(), "--output",
                 (dir / "output").string()},
                sets),
      240);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(result.exit_code, 0) << result.err.substr(0, 4000);
  // Quadratic embedding took minutes at this size; linear takes seconds.
  EXPECT_LT(seconds, 60) << count << " extra nodes";
  std::printf("%d extra nodes: %.1f s\n", count, seconds);
}

}  // namespace
}  // namespace wan::runner::testing
