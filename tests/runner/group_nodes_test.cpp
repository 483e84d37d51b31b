// Legacy group nodes read as ComfyUI's frontend queues them: each fixture in
// tests/data/comfyui/group_nodes/ holds a workflow the frontend saved with group nodes and the API
// prompt the frontend itself made of it; ui_to_api must give the same prompt.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "graph/node_registry.h"
#include "graph/workflow_json.h"
#include "nodes/wan_nodes.h"

namespace wan {
namespace {

using nlohmann::json;

json fixture(const std::string& name) {
  std::ifstream in(std::string(WAN_TEST_DATA_DIR) + "/comfyui/group_nodes/" + name + ".json");
  return json::parse(in);
}

json to_api(const json& workflow) {
  return graph::ui_to_api(workflow, wan::nodes::wan_node_registry());
}

// Node by node: class_type, inputs and title, so a failure names the node that differs.
void expect_same_prompt(const json& ours, const json& frontend) {
  for (const auto& [id, node] : frontend.items()) {
    ASSERT_TRUE(ours.contains(id)) << "node " << id << " (" << node["class_type"] << ") is missing";
    EXPECT_EQ(ours[id]["class_type"], node["class_type"]) << "node " << id;
    EXPECT_EQ(ours[id]["inputs"], node["inputs"]) << "node " << id;
    EXPECT_EQ(ours[id]["_meta"]["title"], node["_meta"]["title"]) << "node " << id;
  }
  for (const auto& [id, node] : ours.items())
    EXPECT_TRUE(frontend.contains(id)) << "node " << id << " (" << node["class_type"]
                                       << ") is not in the frontend's prompt";
}

TEST(GroupNodes, PromptEqualsTheFrontendsForEachRecordedGroup) {
  for (const char* name : {"t2v_text", "t2v_generate", "i2v_picture"}) {
    SCOPED_TRACE(name);
    const json f = fixture(name);
    expect_same_prompt(to_api(f["workflow"]), f["frontend_prompt"]);
  }
}

TEST(GroupNodes, InstanceWidgetValuesReachTheInnerNodes) {
  // Set on the instances in the editor: a new prompt, steps 3 and seed 7. Sample's widgets
  // follow the frontend's text order of slot indices (shift and solver first).
  const json text = to_api(fixture("t2v_text")["workflow"]);
  EXPECT_EQ(text["11:1"]["inputs"]["text"], "A red fox runs through fresh snow.");
  EXPECT_EQ(text["11:0"]["inputs"]["placement"], "offload");
  const json generate = to_api(fixture("t2v_generate")["workflow"]);
  EXPECT_EQ(generate["11:0"]["inputs"]["steps"], 3);
  EXPECT_EQ(generate["11:0"]["inputs"]["seed"], 7);
  EXPECT_EQ(generate["11:0"]["inputs"]["shift"], 5);
  EXPECT_EQ(generate["11:0"]["inputs"]["solver"], "unipc");
  EXPECT_EQ(generate["11:1"]["inputs"]["latent"], json::array({"11:0", 0}));
  // Outputs: the instance's IMAGE output is Decode's, feeding CreateVideo and PreviewImage.
  EXPECT_EQ(generate["8"]["inputs"]["images"], json::array({"11:1", 0}));
  const json picture = to_api(fixture("i2v_picture")["workflow"]);
  EXPECT_EQ(picture["14:1"]["inputs"]["image"], "i2v_input.png");
  EXPECT_EQ(picture["14:2"]["inputs"]["start_image"], json::array({"14:1", 0}));
}

TEST(GroupNodes, OneGroupFeedingAnotherKeepsTheLinksTheFrontendDrops) {
  const json f = fixture("t2v_text_then_generate");
  json frontend = f["frontend_prompt"];
  const json ours = to_api(f["workflow"]);
  // The frontend loses group-to-group links (its prompt would fail ComfyUI's validation).
  ASSERT_FALSE(frontend["12:0"]["inputs"].contains("positive"));
  ASSERT_FALSE(frontend["12:0"]["inputs"].contains("negative"));
  EXPECT_EQ(ours["12:0"]["inputs"]["positive"], json::array({"11:1", 0}));
  EXPECT_EQ(ours["12:0"]["inputs"]["negative"], json::array({"11:2", 0}));
  frontend["12:0"]["inputs"]["positive"] = json::array({"11:1", 0});
  frontend["12:0"]["inputs"]["negative"] = json::array({"11:2", 0});
  expect_same_prompt(ours, frontend);
}

TEST(GroupNodes, TheOlderSeparatorReadsTheSame) {
  json f = fixture("t2v_text");
  for (auto& node : f["workflow"]["nodes"])
    if (node["type"] == "workflow>Text") node["type"] = "workflow/Text";
  expect_same_prompt(to_api(f["workflow"]), f["frontend_prompt"]);
}

TEST(GroupNodes, FilesFromFrontendsWithoutWidgetSlotsReadTheSame) {
  // Before frontend 1.16 only widgets converted to inputs had slots: the layout follows the
  // schemas' widget order instead.
  json f = fixture("t2v_text");
  auto strip = [](json& node) {
    json kept = json::array();
    for (const auto& in : node["inputs"])
      if (!in.contains("widget")) kept.push_back(in);
    node["inputs"] = kept;
  };
  for (auto& node : f["workflow"]["extra"]["groupNodes"]["Text"]["nodes"]) strip(node);
  for (auto& node : f["workflow"]["nodes"])
    if (node["type"] == "workflow>Text") strip(node);
  expect_same_prompt(to_api(f["workflow"]), f["frontend_prompt"]);
}

void expect_error(const json& workflow, const std::string& part) {
  try {
    to_api(workflow);
    ADD_FAILURE() << "no error; expected one containing: " << part;
  } catch (const ValidationError& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(GroupNodes, UnreadableGroupsAreErrorsNamingThem) {
  json f = fixture("t2v_text")["workflow"];
  json undefined = f;
  undefined["extra"]["groupNodes"].erase("Text");
  expect_error(undefined, "group node 'Text', which the workflow's extra.groupNodes does not define");

  json unknown = f;
  unknown["extra"]["groupNodes"]["Text"]["nodes"][0]["type"] = "NoSuchLoader";
  expect_error(unknown, "contains node type 'NoSuchLoader'");

  json reroute = f;
  reroute["extra"]["groupNodes"]["Text"]["nodes"][0]["type"] = "Reroute";
  expect_error(reroute, "contains a Reroute");

  json bad_link = f;
  bad_link["extra"]["groupNodes"]["Text"]["links"][0][2] = 99;
  expect_error(bad_link, "names an inner node it does not have");
}

}  // namespace
}  // namespace wan
