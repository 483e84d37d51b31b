// One wan-serve engine and server per test binary, in-process on 127.0.0.1 and a free port, over
// the tiny models; plus the shipped t2v workflow as an API prompt sized for them.
#pragma once
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "graph/node_registry.h"
#include "graph/workflow_json.h"
#include "runner/runner_test_util.h"
#include "server/comfy_server.h"
#include "server/engine.h"
#include "server/http_client.h"
#include "nodes/wan_nodes.h"

namespace wan::server::testing {

namespace fs = std::filesystem;
using nlohmann::json;

// The shared server's --max-queue (the load test runs its own server).
constexpr size_t kTestMaxQueue = 64;

struct ServerFolders {
  fs::path root, output, input, temp, user;
};

// The tiny-model engine flags; wan-run gets the same ones for bit-identical outputs.
inline std::vector<std::string> engine_flags(const ServerFolders& folders) {
  return {"--models", runner::testing::models_dir().string(),
          "--output", folders.output.string(),
          "--input",  folders.input.string(),
          "--temp",   folders.temp.string(),
          "--vram",   "40MiB",
          "--reserve", "0"};
}

class TestServer {
 public:
  static TestServer& shared() {
    static std::mutex mutex;  // clients on several threads may be the first to ask
    std::lock_guard<std::mutex> lock(mutex);
    auto& server = instance();
    if (!server) server.reset(new TestServer());
    return *server;
  }
  // Stops the server and the engine before the process exits (a global test environment).
  static void shutdown() { instance().reset(); }
  ~TestServer() {
    server_.reset();
    engine_.reset();
    std::error_code ec;
    fs::remove_all(folders_.root, ec);
  }
  uint16_t port() const { return server_->port(); }
  const ServerFolders& folders() const { return folders_; }
  Engine& engine() { return *engine_; }

 private:
  static std::unique_ptr<TestServer>& instance() {
    static std::unique_ptr<TestServer> server;
    return server;
  }
  TestServer() {
    folders_.root = fs::temp_directory_path() / ("wan_serve_test_" + std::to_string(getpid()));
    fs::remove_all(folders_.root);
    folders_.output = folders_.root / "output";
    folders_.input = folders_.root / "input";
    folders_.temp = folders_.root / "temp";
    folders_.user = folders_.root / "user";
    for (const auto& dir : {folders_.output, folders_.input, folders_.temp, folders_.user})
      fs::create_directories(dir);
    engine_ = std::make_unique<Engine>(engine_flags(folders_));
    ServerOptions options;
    options.port = 0;
    options.user_dir = folders_.user;
    options.max_upload_bytes = size_t(1) << 20;
    options.max_queue = kTestMaxQueue;
    HttpServerLimits limits;
    limits.request_timeout_s = 1;  // slow-client tests wait this long, no more
    server_ = std::make_unique<ComfyServer>(options, *engine_, front_end_root(), limits);
  }
  // A tiny frontend folder (the real one is used by the browser test).
  fs::path front_end_root() {
    const fs::path root = folders_.root / "web";
    fs::create_directories(root / "extensions" / "core");
    std::ofstream(root / "index.html") << "<!doctype html><title>wan-serve test</title>";
    std::ofstream(root / "extensions" / "core" / "a.js") << "export {};";
    return root;
  }

  ServerFolders folders_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<ComfyServer> server_;
};

inline uint16_t port() { return TestServer::shared().port(); }

inline HttpReply get(const std::string& target,
                     const std::map<std::string, std::string>& headers = {}) {
  return http_request(port(), "GET", target, "", headers);
}
inline HttpReply post(const std::string& target, const std::string& body,
                      const std::map<std::string, std::string>& headers = {}) {
  return http_request(port(), "POST", target, body, headers);
}

// workflows/t2v/baseline.json as ComfyUI's frontend would queue it, pointed at the tiny models
// (the runner tests' overrides), plus a SaveTensor of the decoded frames as node 900.
inline json tiny_t2v_prompt(int64_t seed = 0, int64_t steps = 2) {
  const auto& registry = wan::nodes::wan_node_registry();
  json prompt = graph::to_api_prompt(
      graph::read_json_file(runner::testing::workflow_path("t2v", "baseline")), registry);
  auto sets = runner::testing::tiny_overrides("t2v", false, steps);
  sets.push_back("Sample.seed=" + std::to_string(seed));
  for (const auto& set : sets) graph::apply_override(prompt, set, registry);
  std::string decode;
  for (const auto& [id, node] : prompt.items())
    if (node["class_type"] == "Decode") decode = id;
  prompt["900"] = {{"class_type", "SaveTensor"},
                   {"inputs", {{"tensor", json::array({decode, 0})}, {"filename_prefix", "frames"}}}};
  return prompt;
}

// The id of the node of `class_type` in `prompt` (the first one).
inline std::string node_of(const json& prompt, const std::string& class_type) {
  for (const auto& [id, node] : prompt.items())
    if (node["class_type"] == class_type) return id;
  return "";
}

// Polls /history/{id} until the entry appears (the executor thread files it).
inline json wait_history(const std::string& prompt_id, double timeout_s = 120) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  while (std::chrono::steady_clock::now() < deadline) {
    const json history = get("/history/" + prompt_id).json();
    if (history.is_object() && history.contains(prompt_id)) return history[prompt_id];
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return json();
}

}  // namespace wan::server::testing
