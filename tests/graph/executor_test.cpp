#include "graph/executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "graph/fake_nodes.h"

namespace wan::graph {
namespace {

using nlohmann::json;
using testing::runs;
using testing::saved;

class ExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::reset();
    run_.on_progress = [this](const ProgressEvent& event) {
      events_.push_back(event);
      if (cancel_at_step_ && event.kind == ProgressEvent::Kind::kStep &&
          event.step == cancel_at_step_) {
        cancel_ = true;
      }
    };
    run_.cancel_flag = &cancel_;
  }
  // "started:2" / "cached:1" / "finished:3" / "step:2:1/3" in order.
  std::vector<std::string> event_log() const {
    std::vector<std::string> log;
    for (const auto& e : events_) {
      switch (e.kind) {
        case ProgressEvent::Kind::kNodeStarted:
          log.push_back("started:" + e.node_id);
          break;
        case ProgressEvent::Kind::kNodeCached:
          log.push_back("cached:" + e.node_id);
          break;
        case ProgressEvent::Kind::kNodeFinished:
          log.push_back("finished:" + e.node_id);
          break;
        case ProgressEvent::Kind::kStep:
          log.push_back("step:" + e.node_id + ":" + std::to_string(e.step) + "/" +
                        std::to_string(e.steps));
          break;
      }
    }
    return log;
  }

  NodeRegistry registry_ = testing::make_registry();
  Executor executor_{registry_};
  RunContext run_;
  std::vector<ProgressEvent> events_;
  std::atomic<bool> cancel_{false};
  int64_t cancel_at_step_ = 0;
  json prompt_ = testing::basic_prompt();
};

TEST_F(ExecutorTest, RunsOnlyAncestorsOfOutputNodesInDependencyOrder) {
  const RunReport report = executor_.run(prompt_, run_);
  EXPECT_EQ(event_log(),
            (std::vector<std::string>{"started:1", "finished:1", "started:2", "step:2:1/3",
                                      "step:2:2/3", "step:2:3/3", "finished:2", "started:3",
                                      "finished:3", "started:4", "finished:4"}));
  EXPECT_EQ(runs().count("FakeText"), 0u);  // node 5 feeds no output
  ASSERT_EQ(saved().size(), 1u);
  // (seed 10 + bias default 0.5) * scale 2, decoded x2.
  EXPECT_DOUBLE_EQ(saved()[0].item<double>(), 42.0);
  EXPECT_EQ(report.executed(), 4);
  ASSERT_EQ(report.nodes.size(), 4u);
  EXPECT_EQ(report.nodes[1].node_id, "2");
  EXPECT_EQ(report.nodes[1].title, "sampler");
}

TEST_F(ExecutorTest, ChangedSeedRerunsOnlySampleAndItsDescendants) {
  executor_.run(prompt_, run_);
  prompt_["2"]["inputs"]["seed"] = 20;
  events_.clear();
  const RunReport report = executor_.run(prompt_, run_);
  EXPECT_EQ(runs()["FakeLoader"], 1);  // the model stayed loaded
  EXPECT_EQ(runs()["FakeSample"], 2);
  EXPECT_EQ(runs()["FakeDecode"], 2);
  EXPECT_EQ(runs()["FakeSave"], 2);
  EXPECT_EQ(report.cached(), 1);
  EXPECT_EQ(report.executed(), 3);
  EXPECT_EQ(event_log().front(), "cached:1");
  EXPECT_DOUBLE_EQ(saved().back().item<double>(), 82.0);
}

TEST_F(ExecutorTest, IdenticalRerunRunsNothingAndChangedLoaderRerunsAll) {
  executor_.run(prompt_, run_);
  const RunReport again = executor_.run(prompt_, run_);
  EXPECT_EQ(again.executed(), 0);
  EXPECT_EQ(again.cached(), 4);
  EXPECT_EQ(runs()["FakeLoader"], 1);

  prompt_["1"]["inputs"]["scale"] = 3.0;
  const RunReport changed = executor_.run(prompt_, run_);
  EXPECT_EQ(changed.executed(), 4);
  EXPECT_EQ(runs()["FakeLoader"], 2);
  // The old model and everything computed from it left the cache.
  EXPECT_EQ(executor_.cache_size(), 4u);
}

TEST_F(ExecutorTest, CacheIgnoresNodeIdsAndTitles) {
  executor_.run(prompt_, run_);
  json renumbered;
  for (auto& [id, node] : prompt_.items()) {
    json copy = node;
    for (auto& [name, value] : copy["inputs"].items()) {
      if (value.is_array()) value[0] = "n" + value[0].get<std::string>();
    }
    copy["_meta"]["title"] = "renamed";
    renumbered["n" + id] = copy;
  }
  EXPECT_EQ(executor_.run(renumbered, run_).executed(), 0);
}

TEST_F(ExecutorTest, OutputsOfLastRunAreReadable) {
  executor_.run(prompt_, run_);
  const Values* latent = executor_.outputs("2");
  ASSERT_NE(latent, nullptr);
  EXPECT_DOUBLE_EQ((*latent)[0].as_tensor().item<double>(), 21.0);
  EXPECT_EQ(executor_.outputs("5"), nullptr);
  executor_.clear_cache();
  EXPECT_EQ(executor_.outputs("2"), nullptr);
  EXPECT_EQ(executor_.run(prompt_, run_).executed(), 4);
}

TEST_F(ExecutorTest, CancelBetweenStepsFreesThisRunsOutputs) {
  executor_.run(prompt_, run_);  // loader cached with scale 2
  prompt_["1"]["inputs"]["scale"] = 4.0;
  prompt_["2"]["inputs"]["seed"] = 1;
  cancel_at_step_ = 2;
  EXPECT_THROW(executor_.run(prompt_, run_), Cancelled);
  EXPECT_EQ(runs()["FakeLoader"], 2);
  EXPECT_EQ(runs()["FakeDecode"], 1);  // nothing after the cancelled node ran
  const RunReport& report = executor_.last_report();
  ASSERT_EQ(report.nodes.size(), 2u);
  EXPECT_EQ(report.nodes[1].outcome, NodeRun::Outcome::kCancelled);
  EXPECT_EQ(report.to_json()["nodes"][1]["outcome"], "cancelled");
  EXPECT_EQ(executor_.cache_size(), 0u);  // the loader this run computed is gone too

  cancel_ = false;
  cancel_at_step_ = 0;
  executor_.run(prompt_, run_);
  EXPECT_EQ(runs()["FakeLoader"], 3);  // it had to load again
}

TEST_F(ExecutorTest, CancelKeepsWhatEarlierRunsCached) {
  executor_.run(prompt_, run_);
  prompt_["2"]["inputs"]["seed"] = 5;
  cancel_at_step_ = 1;
  EXPECT_THROW(executor_.run(prompt_, run_), Cancelled);
  cancel_ = false;
  cancel_at_step_ = 0;
  executor_.run(prompt_, run_);
  EXPECT_EQ(runs()["FakeLoader"], 1);
}

TEST_F(ExecutorTest, CancelFlagIsCheckedBeforeEachNode) {
  cancel_ = true;
  EXPECT_THROW(executor_.run(prompt_, run_), Cancelled);
  EXPECT_TRUE(runs().empty());
}

TEST_F(ExecutorTest, NodeFailureNamesNodeAndClass) {
  prompt_["3"]["class_type"] = "FakeFail";
  prompt_["3"]["inputs"].erase("model");
  try {
    executor_.run(prompt_, run_);
    FAIL() << "no exception";
  } catch (const NodeError& e) {
    EXPECT_EQ(e.node_id(), "3");
    EXPECT_EQ(e.class_type(), "FakeFail");
    EXPECT_STREQ(e.what(), "FakeFail (node 3): boom");
    EXPECT_THROW(std::rethrow_exception(e.cause()), std::runtime_error);
  }
  const RunReport& report = executor_.last_report();
  ASSERT_EQ(report.nodes.size(), 3u);
  EXPECT_EQ(report.nodes[2].outcome, NodeRun::Outcome::kError);
  EXPECT_EQ(report.nodes[2].error, "boom");
  EXPECT_EQ(report.to_json()["nodes"][2]["error"], "boom");
  EXPECT_EQ(runs().count("FakeSave"), 0u);
  // What ran before the failure stays cached for the next attempt.
  prompt_ = testing::basic_prompt();
  EXPECT_EQ(executor_.run(prompt_, run_).cached(), 2);
}

TEST_F(ExecutorTest, RejectsInvalidPromptBeforeRunningAnyNode) {
  prompt_["2"]["inputs"]["extra"] = json::array({"3", 0});  // 2 -> 3 -> 2 after the fix below
  prompt_["3"]["class_type"] = "FakeSample";
  prompt_["3"]["inputs"] = {
      {"model", {"1", 0}}, {"seed", 1}, {"steps", 1}, {"mode", "add"}, {"extra", {"2", 0}}};
  prompt_["4"]["inputs"]["images"] = json::array({"3", 0});
  try {
    executor_.run(prompt_, run_);
    FAIL() << "no exception";
  } catch (const InvalidPrompt& e) {
    EXPECT_EQ(e.report()["node_errors"]["2"]["errors"][0]["type"], "dependency_cycle");
  }
  EXPECT_TRUE(runs().empty());
}

// An output node that takes at least `ms` milliseconds: the measured time cannot be the default 0.
class SleepNode : public Node {
 public:
  static NodeSchema schema() {
    return NodeSchema("SleepNode", "test").output_node().input(Int("ms").default_to(0).min(0).max(1000));
  }
  Values execute(const Values& in, RunContext&) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(in.integer("ms")));
    return {};
  }
};

TEST_F(ExecutorTest, ReportsWallTimePerNode) {
  registry_.add<SleepNode>();
  prompt_["9"] = {{"class_type", "SleepNode"}, {"inputs", {{"ms", 30}}}};
  const json report = executor_.run(prompt_, run_).to_json();
  ASSERT_EQ(report["nodes"].size(), 5u);
  double sleep_ms = -1, nodes_ms = 0;
  for (const auto& node : report["nodes"]) {
    EXPECT_EQ(node["outcome"], "ok");
    EXPECT_GE(node["wall_ms"].get<double>(), 0.0);
    nodes_ms += node["wall_ms"].get<double>();
    if (node["class_type"] == "SleepNode") sleep_ms = node["wall_ms"].get<double>();
  }
  // A sleep never returns early: the node's time is at least its 30 ms, and the run's at least
  // the sum of its nodes'.
  EXPECT_GE(sleep_ms, 30.0);
  EXPECT_EQ(report["executed"], 5);
  EXPECT_GE(report["wall_ms"].get<double>(), nodes_ms);
}

TEST_F(ExecutorTest, OptionalSocketFeedsWhenLinked) {
  // A second sampler reads the first one's latent through the optional "extra" socket.
  prompt_["6"] = {{"class_type", "FakeSample"},
                  {"inputs",
                   {{"model", {"1", 0}},
                    {"seed", 0},
                    {"steps", 1},
                    {"mode", "add"},
                    {"bias", 0.0},
                    {"extra", {"2", 0}}}}};
  prompt_["4"]["inputs"]["images"] = json::array({"6", 0});
  executor_.run(prompt_, run_);
  EXPECT_DOUBLE_EQ(saved().back().item<double>(), 21.0);  // 0 * 2 + 21
  EXPECT_EQ(runs().count("FakeDecode"), 0u);
}

}  // namespace
}  // namespace wan::graph
