// The planner has no node semantics of its own: it runs the nodes' plan() methods in the
// executor's order, and refuses a prompt with a node that declares none.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "graph/execution_order.h"
#include "graph/validator.h"
#include "nodes/wan_nodes.h"
#include "plan/memory_plan.h"

namespace wan::plan {
namespace {

using nlohmann::json;

// An output node with no plan(): what a third-party node looks like to the planner.
class WritesSomething : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("WritesSomething", "test")
        .output_node()
        .input(graph::Socket("images", "IMAGE"));
  }
  graph::Values execute(const graph::Values&, graph::RunContext&) override { return {}; }
};

json image_chain(int pairs, const std::string& sink) {
  // LoadImage, then CreateVideo -> GetVideoComponents `pairs` times, then the sink.
  json prompt = {{"1", {{"class_type", "LoadImage"}, {"inputs", {{"image", "start.png"}}}}}};
  std::string images = "1";
  int64_t index = 0;
  for (int i = 0; i < pairs; ++i) {
    const std::string video = std::to_string(2 + 2 * i), frames = std::to_string(3 + 2 * i);
    prompt[video] = {{"class_type", "CreateVideo"},
                     {"inputs", {{"images", json::array({images, index})}, {"fps", 16.0}}}};
    prompt[frames] = {{"class_type", "GetVideoComponents"},
                      {"inputs", {{"video", json::array({video, 0})}}}};
    images = frames;
    index = 0;
  }
  prompt[std::to_string(2 + 2 * pairs)] = {
      {"class_type", sink},
      {"inputs", {{"images", json::array({images, index})}, {"filename_prefix", "x"}}}};
  return prompt;
}

PlanOptions preset_options() {
  PlanOptions options;
  options.preset = "t2v-1.3B";  // nothing is read: the input file need not exist
  return options;
}

TEST(NodePlans, EveryNodeOfThePackDeclaresAPlan) {
  // The shipped workflows' plans exercise every Wan node (shipped_workflows_plan_test.cpp); the
  // core nodes are planned here, as a chain through each of them.
  graph::NodeRegistry registry;
  nodes::register_wan_nodes(registry);
  const auto plan = plan_prompt(image_chain(2, "SaveImage"), registry, preset_options());
  EXPECT_TRUE(plan.fits);
  EXPECT_EQ(plan.nodes.size(), 6u);
}

TEST(NodePlans, RefusesANodeWithoutAPlanNamingIt) {
  graph::NodeRegistry registry;
  nodes::register_wan_nodes(registry);
  registry.add<WritesSomething>();
  json prompt = image_chain(1, "WritesSomething");
  prompt["4"]["inputs"].erase("filename_prefix");
  try {
    plan_prompt(prompt, registry, preset_options());
    FAIL() << "planned a node that has no plan";
  } catch (const ValidationError& e) {
    EXPECT_NE(std::string(e.what()).find("WritesSomething (node 4) declares no memory plan"),
              std::string::npos)
        << e.what();
  }
}

TEST(NodePlans, PlansInTheExecutorsOrderWithoutRecursionOnLongChains) {
  // 60,002 nodes in one chain: the order is computed with an explicit stack, as the executor's.
  const auto& registry = nodes::wan_node_registry();
  const json prompt = image_chain(30000, "SaveImage");
  const auto plan = plan_prompt(prompt, registry, preset_options());
  ASSERT_EQ(plan.nodes.size(), 60002u);
  const auto order = graph::execution_order(prompt, registry, {"60002"});
  ASSERT_EQ(order.size(), plan.nodes.size());
  for (size_t i = 0; i < order.size(); ++i) ASSERT_EQ(plan.nodes[i].node_id, order[i]) << i;
}

}  // namespace
}  // namespace wan::plan
