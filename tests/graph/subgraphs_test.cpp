// Subgraphs of ComfyUI's frontend in UI workflows: every instance is inlined with ids
// "<instance>:<inner>", links through the subgraph's input and output nodes joined, nested
// instances too, and a definition that contains itself is refused.
#include "graph/subgraphs.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "graph/fake_nodes.h"
#include "graph/workflow_json.h"

namespace wan::graph {
namespace {

using nlohmann::json;

// S: x (INT) -> inner FakeAdd 1 (y 10) -> output. T: x -> instance 3 of S -> inner FakeAdd 4
// (y 1000) -> output. Top: FakeAdd 1 (y 2) -> instance 5 of S -> FakeAdd 7 (y 100);
// FakeAdd 1 -> instance 9 of T -> FakeAdd 8 (y 7).
json workflow_with_subgraphs() {
  return json::parse(R"({
    "nodes": [
      {"id": 1, "type": "FakeAdd", "mode": 0, "inputs": [],
       "outputs": [{"name": "INT", "type": "INT", "links": [1, 3]}], "widgets_values": [2]},
      {"id": 5, "type": "sub-s", "mode": 0,
       "inputs": [{"name": "x", "type": "INT", "link": 1}],
       "outputs": [{"name": "out", "type": "INT", "links": [2]}]},
      {"id": 7, "type": "FakeAdd", "mode": 0,
       "inputs": [{"name": "x", "type": "INT", "link": 2}], "widgets_values": [100]},
      {"id": 9, "type": "sub-t", "mode": 0,
       "inputs": [{"name": "x", "type": "INT", "link": 3}],
       "outputs": [{"name": "out", "type": "INT", "links": [4]}]},
      {"id": 8, "type": "FakeAdd", "mode": 0,
       "inputs": [{"name": "x", "type": "INT", "link": 4}], "widgets_values": [7]}
    ],
    "links": [[1, 1, 0, 5, 0, "INT"], [2, 5, 0, 7, 0, "INT"], [3, 1, 0, 9, 0, "INT"],
              [4, 9, 0, 8, 0, "INT"]],
    "definitions": {"subgraphs": [
      {"id": "sub-s", "name": "S", "inputNode": {"id": -10}, "outputNode": {"id": -20},
       "inputs": [{"name": "x", "type": "INT", "linkIds": [11]}],
       "outputs": [{"name": "out", "type": "INT", "linkIds": [12]}],
       "nodes": [{"id": 1, "type": "FakeAdd", "mode": 0,
                  "inputs": [{"name": "x", "type": "INT", "link": 11}],
                  "outputs": [{"name": "INT", "type": "INT", "links": [12]}],
                  "widgets_values": [10]}],
       "links": [{"id": 11, "origin_id": -10, "origin_slot": 0, "target_id": 1, "target_slot": 0, "type": "INT"},
                 {"id": 12, "origin_id": 1, "origin_slot": 0, "target_id": -20, "target_slot": 0, "type": "INT"}]},
      {"id": "sub-t", "name": "T", "inputNode": {"id": -10}, "outputNode": {"id": -20},
       "inputs": [{"name": "x", "type": "INT", "linkIds": [21]}],
       "outputs": [{"name": "out", "type": "INT", "linkIds": [23]}],
       "nodes": [{"id": 3, "type": "sub-s", "mode": 0,
                  "inputs": [{"name": "x", "type": "INT", "link": 21}],
                  "outputs": [{"name": "out", "type": "INT", "links": [22]}]},
                 {"id": 4, "type": "FakeAdd", "mode": 0,
                  "inputs": [{"name": "x", "type": "INT", "link": 22}],
                  "outputs": [{"name": "INT", "type": "INT", "links": [23]}],
                  "widgets_values": [1000]}],
       "links": [{"id": 21, "origin_id": -10, "origin_slot": 0, "target_id": 3, "target_slot": 0, "type": "INT"},
                 {"id": 22, "origin_id": 3, "origin_slot": 0, "target_id": 4, "target_slot": 0, "type": "INT"},
                 {"id": 23, "origin_id": 4, "origin_slot": 0, "target_id": -20, "target_slot": 0, "type": "INT"}]}
    ]}
  })");
}

TEST(Subgraphs, InstancesAreInlinedWithOuterInnerIds) {
  const NodeRegistry registry = testing::make_registry();
  const json prompt = ui_to_api(workflow_with_subgraphs(), registry);
  EXPECT_EQ(prompt.size(), 6u) << prompt.dump(1);
  EXPECT_EQ(prompt["1"]["inputs"]["y"], 2);
  EXPECT_EQ(prompt["5:1"]["inputs"]["y"], 10);
  EXPECT_EQ(prompt["5:1"]["inputs"]["x"], json::array({"1", 0}));
  EXPECT_EQ(prompt["7"]["inputs"]["x"], json::array({"5:1", 0}));
  // Nested: T's instance 9 holds S's instance 3, whose node 1 is "9:3:1".
  EXPECT_EQ(prompt["9:3:1"]["inputs"]["x"], json::array({"1", 0}));
  EXPECT_EQ(prompt["9:4"]["inputs"]["x"], json::array({"9:3:1", 0}));
  EXPECT_EQ(prompt["8"]["inputs"]["x"], json::array({"9:4", 0}));
  EXPECT_FALSE(prompt.contains("5"));
  EXPECT_FALSE(prompt.contains("9"));
}

TEST(Subgraphs, AnUnconnectedSubgraphInputLeavesTheInnerInputUnlinked) {
  json ui = workflow_with_subgraphs();
  ui["nodes"][1]["inputs"][0]["link"] = nullptr;
  const json prompt = ui_to_api(ui, testing::make_registry());
  EXPECT_FALSE(prompt["5:1"]["inputs"].contains("x"));
  EXPECT_EQ(prompt["5:1"]["inputs"]["y"], 10);
}

TEST(Subgraphs, ABypassedInstanceRunsNothingInside) {
  json ui = workflow_with_subgraphs();
  ui["nodes"][3]["mode"] = 4;
  const json prompt = ui_to_api(ui, testing::make_registry());
  EXPECT_FALSE(prompt.contains("9:4"));
  EXPECT_FALSE(prompt.contains("9:3:1"));
}

TEST(Subgraphs, ADefinitionThatContainsItselfIsRefused) {
  json ui = workflow_with_subgraphs();
  ui["definitions"]["subgraphs"][0]["nodes"][0]["type"] = "sub-s";  // S holds an S
  EXPECT_THROW(flatten_subgraphs(ui), ValidationError);
}

TEST(Subgraphs, AWorkflowWithoutDefinitionsIsUnchanged) {
  json ui = workflow_with_subgraphs();
  ui.erase("definitions");
  EXPECT_EQ(flatten_subgraphs(ui), ui);
}

}  // namespace
}  // namespace wan::graph
