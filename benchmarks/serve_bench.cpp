// wan-serve's own overhead around a prompt, on the tiny models, in-process on 127.0.0.1. Not part
// of the unit run. For each of kPrompts prompts (a new seed each, so Sample onwards re-runs and
// the loaders come from the cache) it measures, at the client's socket:
//   queue -> first executing:  POST /prompt sent to the first "executing" message received;
//   last node -> success:      the last node's end (its "executing" arrival plus its wall time
//                              from the prompt's report) to "execution_success" received;
// and prints medians, each also as a ratio of the median node time of the same prompts (the
// reference measured in the same run).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "graph/node_registry.h"
#include "graph/workflow_json.h"
#include "server/comfy_server.h"
#include "server/engine.h"
#include "server/http_client.h"
#include "nodes/wan_nodes.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace wan::server;

constexpr int kPrompts = 10;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0 : values[values.size() / 2];
}

// The shipped t2v workflow on the tiny models (the runner tests' settings), one sampling step.
json tiny_prompt(const fs::path& source, int64_t seed) {
  const auto& registry = wan::nodes::wan_node_registry();
  json prompt = wan::graph::to_api_prompt(
      wan::graph::read_json_file(source / "workflows" / "t2v" / "baseline.json"), registry);
  for (const std::string set :
       {"LoadDiT.model_name=dit_t2v_tiny.safetensors", "LoadT5.model_name=t5_tiny_encoder.pth",
        "LoadT5.tokenizer=wan_tiny", "LoadVAE.model_name=vae_tiny.pth", "Sample.steps=1",
        "Sample.width=64", "Sample.height=64", "Sample.frames=9"})
    wan::graph::apply_override(prompt, set, registry);
  wan::graph::apply_override(prompt, "Sample.seed=" + std::to_string(seed), registry);
  return prompt;
}

}  // namespace

int main() {
  spdlog::set_level(spdlog::level::warn);
  const fs::path source = WAN_SOURCE_DIR;
  const fs::path work = fs::temp_directory_path() / ("wan_serve_bench_" + std::to_string(getpid()));
  fs::remove_all(work);
  Engine engine({"--models", (source / "tests/data/models").string(), "--output",
                 (work / "output").string(), "--input", (work / "input").string(), "--vram",
                 "40MiB", "--reserve", "0"});
  ServerOptions options;
  options.port = 0;
  options.user_dir = work / "user";
  ComfyServer server(options, engine, {});
  const uint16_t port = server.port();
  testing::WsClient ws(port, "/ws?clientId=bench");
  if (!ws.connected() || !ws.next()) {
    std::fprintf(stderr, "serve_bench: cannot open the socket\n");
    return 1;
  }

  std::vector<double> to_first, after_last, node_ms;
  for (int i = 0; i <= kPrompts; ++i) {
    const json body = {{"prompt", tiny_prompt(source, 100 + i)}, {"client_id", "bench"}};
    const auto sent = Clock::now();
    const auto reply = testing::http_request(port, "POST", "/prompt", body.dump());
    if (reply.status != 200) {
      std::fprintf(stderr, "serve_bench: /prompt answered %d: %s\n", reply.status,
                   reply.body.c_str());
      return 1;
    }
    const std::string id = reply.json()["prompt_id"];
    std::optional<Clock::time_point> first;
    Clock::time_point last_executing = sent, success = sent;
    std::string last_node;
    while (auto message = ws.next(60)) {
      const auto now = Clock::now();
      const std::string type = (*message)["type"];
      if (type == "executing" && (*message)["data"]["node"].is_string()) {
        if (!first) first = now;
        last_executing = now;
        last_node = (*message)["data"]["node"];
      }
      if (type == "execution_success") {
        success = now;
        break;
      }
    }
    const json report = testing::http_request(port, "GET", "/history/" + id).json()[id]
                                                                                 ["memory_report"];
    double total = 0, last_wall = 0;
    for (const auto& node : report["run"]["nodes"]) {
      total += node.value("wall_ms", 0.0);
      if (node["id"] == last_node) last_wall = node.value("wall_ms", 0.0);
    }
    if (i == 0 || !first) continue;  // the first prompt loads the models: not measured
    to_first.push_back(ms_between(sent, *first));
    after_last.push_back(ms_between(last_executing, success) - last_wall);
    node_ms.push_back(total);
  }
  server.stop();
  fs::remove_all(work);

  const double reference = median(node_ms);
  std::printf("serve_bench: %d prompts on the tiny t2v workflow (new seed each; loaders cached)\n",
              kPrompts);
  std::printf("  node time per prompt (reference):  %8.2f ms median\n", reference);
  std::printf("  queue -> first executing:          %8.2f ms median  (%.3f x node time)\n",
              median(to_first), median(to_first) / reference);
  std::printf("  last node end -> execution_success: %7.2f ms median  (%.3f x node time)\n",
              median(after_last), median(after_last) / reference);
  return 0;
}
