// Executor overhead on a 200-node graph of cheap integer nodes, and what the output cache saves
// on re-runs. Not part of the unit run. Prints times and ratios:
//   per-node overhead of a cold run (target < 0.1 ms), a fully cached re-run, and a re-run after
//   changing one literal halfway down the graph (only that node and its descendants re-run).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "graph/executor.h"
#include "graph/validator.h"

namespace {

using nlohmann::json;
using namespace wan::graph;

constexpr int kNodes = 200;
constexpr int kRepeats = 20;

// out = (a + b + y) mod 1000 after busy-waiting work_us microseconds (a stand-in for real work);
// a and b are optional INT sockets, so each node can read its two predecessors.
class BenchAdd : public Node {
 public:
  static NodeSchema schema() {
    return NodeSchema("BenchAdd", "bench")
        .input(Int("y").default_to(0).min(-1000).max(1000))
        .input(Int("work_us").default_to(0).min(0))
        .input(Int("a").force_input().optional())
        .input(Int("b").force_input().optional())
        .output("INT");
  }
  Values execute(const Values& in, RunContext&) override {
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::microseconds(in.integer("work_us"));
    while (std::chrono::steady_clock::now() < until) {
    }
    int64_t sum = in.integer("y");
    if (in.has("a")) sum += in.integer("a");
    if (in.has("b")) sum += in.integer("b");
    return {sum % 1000};
  }
};

class BenchSink : public Node {
 public:
  static NodeSchema schema() {
    return NodeSchema("BenchSink", "bench").input(Int("value").force_input()).output_node();
  }
  Values execute(const Values& in, RunContext&) override {
    result = in.integer("value");
    return {};
  }
  static inline int64_t result = 0;
};

// Node i (1-based) reads nodes i-1 and i-2; the sink reads node kNodes.
json make_prompt(int64_t work_us) {
  json prompt = json::object();
  for (int i = 1; i <= kNodes; ++i) {
    json inputs = {{"y", 1}, {"work_us", work_us}};
    if (i > 1) inputs["a"] = json::array({std::to_string(i - 1), 0});
    if (i > 2) inputs["b"] = json::array({std::to_string(i - 2), 0});
    prompt[std::to_string(i)] = {{"class_type", "BenchAdd"}, {"inputs", inputs}};
  }
  prompt["sink"] = {{"class_type", "BenchSink"},
                    {"inputs", {{"value", json::array({std::to_string(kNodes), 0})}}}};
  return prompt;
}

double median(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

template <class F>
double time_ms(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// Runs the three scenarios on a graph whose nodes each work `work_us` microseconds.
void bench(const NodeRegistry& registry, int64_t work_us) {
  const json prompt = make_prompt(work_us);
  RunContext run;
  const int total_nodes = kNodes + 1;
  std::vector<double> validate, cold, cached, partial;
  int partial_executed = 0;
  for (int r = 0; r < kRepeats; ++r) {
    validate.push_back(time_ms([&] { validate_prompt(prompt, registry); }));
    Executor executor(registry);
    cold.push_back(time_ms([&] { executor.run(prompt, run); }));
    cached.push_back(time_ms([&] { executor.run(prompt, run); }));
    json changed = prompt;
    changed[std::to_string(kNodes / 2)]["inputs"]["y"] = 2;
    partial.push_back(time_ms([&] { partial_executed = executor.run(changed, run).executed(); }));
  }
  const double cold_ms = median(cold), cached_ms = median(cached), partial_ms = median(partial);
  std::printf("%d nodes + 1 output node, %lld us of work per node, median of %d runs:\n", kNodes,
              static_cast<long long>(work_us), kRepeats);
  std::printf("  validation alone        %8.3f ms  = %.4f ms per node\n", median(validate),
              median(validate) / total_nodes);
  std::printf("  cold run (validates)    %8.3f ms  = %.4f ms per node", cold_ms,
              cold_ms / total_nodes);
  if (work_us == 0) {
    std::printf("  (overhead; target < 0.1 ms: %s)", cold_ms / total_nodes < 0.1 ? "OK" : "SLOW");
  }
  std::printf(
      "\n  cached re-run           %8.3f ms  (0 of %d nodes executed)  cold/cached = %.1fx\n",
      cached_ms, total_nodes, cold_ms / cached_ms);
  std::printf(
      "  re-run, node %d changed %8.3f ms  (%d of %d nodes executed)  cold/partial = %.2fx\n",
      kNodes / 2, partial_ms, partial_executed, total_nodes, cold_ms / partial_ms);
}

}  // namespace

int main() {
  spdlog::set_level(spdlog::level::warn);
  NodeRegistry registry;
  registry.add<BenchAdd>();
  registry.add<BenchSink>();
  std::printf("executor_bench\n");
  bench(registry, /*work_us=*/0);    // executor overhead alone
  bench(registry, /*work_us=*/100);  // where the cache saves real work
  return 0;
}
