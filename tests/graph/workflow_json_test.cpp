#include "graph/workflow_json.h"

#include <gtest/gtest.h>

#include "graph/fake_nodes.h"
#include "graph/validator.h"

namespace wan::graph {
namespace {

using nlohmann::json;

// A UI workflow exercising every conversion rule:
//  1 FakeLoader ---------------------------+--> 2 FakeSample (seed 42 + "randomize")
//    |                                     |       |
//    +--> 10 Reroute --> 3 FakeDecode.model|       +--> 6 FakeSample (bypassed) --> 3.latent
//  3 --> 4 FakeSave ("Saver")              |
//  5 FakeText (muted), 8 Note, 12 FakeAdd (muted) --> 11 FakeAdd.x
//  13 PrimitiveNode (77) --> 14 FakeSample.seed (a widget converted to an input)
json ui_workflow() {
  return json::parse(R"({
    "last_node_id": 14, "last_link_id": 10, "version": 0.4, "groups": [{"title": "g"}],
    "nodes": [
      {"id": 1, "type": "FakeLoader", "mode": 0, "inputs": [],
       "outputs": [{"name": "model", "type": "FAKE_MODEL", "links": [1, 2, 5, 9]}],
       "widgets_values": ["a.safetensors", 2.0]},
      {"id": 2, "type": "FakeSample", "mode": 0,
       "inputs": [{"name": "model", "type": "FAKE_MODEL", "link": 1},
                  {"name": "extra", "type": "FAKE_LATENT", "link": null},
                  {"name": "seed", "type": "INT", "widget": {"name": "seed"}, "link": null}],
       "outputs": [{"name": "latent", "type": "FAKE_LATENT", "links": [6]}],
       "widgets_values": [42, "randomize", 3, "add", 0.25]},
      {"id": 3, "type": "FakeDecode", "mode": 0,
       "inputs": [{"name": "model", "type": "FAKE_MODEL", "link": 3},
                  {"name": "latent", "type": "FAKE_LATENT", "link": 4}],
       "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [7]}]},
      {"id": 4, "type": "FakeSave", "mode": 0, "title": "Saver",
       "inputs": [{"name": "images", "type": "IMAGE,FAKE_LATENT", "link": 7}],
       "widgets_values": ["clip"]},
      {"id": 5, "type": "FakeText", "mode": 2, "widgets_values": ["hello", false]},
      {"id": 6, "type": "FakeSample", "mode": 4,
       "inputs": [{"name": "model", "type": "FAKE_MODEL", "link": 5},
                  {"name": "extra", "type": "FAKE_LATENT", "link": 6}],
       "outputs": [{"name": "latent", "type": "FAKE_LATENT", "links": [4]}],
       "widgets_values": [1, "fixed", 9, "add", 0.0]},
      {"id": 8, "type": "Note", "mode": 0, "widgets_values": ["remember"]},
      {"id": 10, "type": "Reroute", "mode": 0,
       "inputs": [{"name": "", "type": "*", "link": 2}],
       "outputs": [{"name": "", "type": "FAKE_MODEL", "links": [3]}]},
      {"id": 11, "type": "FakeAdd", "mode": 0,
       "inputs": [{"name": "x", "type": "INT", "link": 10}], "widgets_values": [5]},
      {"id": 12, "type": "FakeAdd", "mode": 2, "inputs": [],
       "outputs": [{"name": "INT", "type": "INT", "links": [10]}], "widgets_values": [3]},
      {"id": 13, "type": "PrimitiveNode", "mode": 0,
       "outputs": [{"name": "INT", "type": "INT", "links": [8],
                    "widget": {"name": "seed"}}],
       "widgets_values": [77, "fixed"]},
      {"id": 14, "type": "FakeSample", "mode": 0,
       "inputs": [{"name": "model", "type": "FAKE_MODEL", "link": 9},
                  {"name": "seed", "type": "INT", "widget": {"name": "seed"}, "link": 8}],
       "widgets_values": [1, "fixed", 5, "mul"]}
    ],
    "links": [[1, 1, 0, 2, 0, "FAKE_MODEL"], [2, 1, 0, 10, 0, "FAKE_MODEL"],
              [3, 10, 0, 3, 0, "FAKE_MODEL"], [4, 6, 0, 3, 1, "FAKE_LATENT"],
              [5, 1, 0, 6, 0, "FAKE_MODEL"], [6, 2, 0, 6, 1, "FAKE_LATENT"],
              [7, 3, 0, 4, 0, "IMAGE"], [8, 13, 0, 14, 1, "INT"],
              [9, 1, 0, 14, 0, "FAKE_MODEL"], [10, 12, 0, 11, 0, "INT"]],
    "config": {}, "extra": {}
  })");
}

json expected_prompt() {
  return json::parse(R"({
    "1": {"class_type": "FakeLoader", "inputs": {"model_name": "a.safetensors", "scale": 2.0},
          "_meta": {"title": "Fake Loader"}},
    "2": {"class_type": "FakeSample",
          "inputs": {"model": ["1", 0], "seed": 42, "steps": 3, "mode": "add", "bias": 0.25},
          "_meta": {"title": "FakeSample"}},
    "3": {"class_type": "FakeDecode", "inputs": {"model": ["1", 0], "latent": ["2", 0]},
          "_meta": {"title": "FakeDecode"}},
    "4": {"class_type": "FakeSave", "inputs": {"images": ["3", 0], "filename_prefix": "clip"},
          "_meta": {"title": "Saver"}},
    "11": {"class_type": "FakeAdd", "inputs": {"y": 5}, "_meta": {"title": "FakeAdd"}},
    "14": {"class_type": "FakeSample",
           "inputs": {"model": ["1", 0], "seed": 77, "steps": 5, "mode": "mul"},
           "_meta": {"title": "FakeSample"}}
  })");
}

class Workflow : public ::testing::Test {
 protected:
  NodeRegistry registry_ = testing::make_registry();
};

TEST_F(Workflow, UiToApiConvertsEveryRule) {
  const json prompt = ui_to_api(ui_workflow(), registry_);
  EXPECT_EQ(prompt, expected_prompt()) << prompt.dump(2);
  EXPECT_TRUE(validate_prompt(prompt, registry_).ok);
}

TEST_F(Workflow, UiToApiSkipsControlAfterGenerateValue) {
  const json prompt = ui_to_api(ui_workflow(), registry_);
  // [42, "randomize", 3, "add", 0.25]: "randomize" belongs to seed's control widget.
  EXPECT_EQ(prompt["2"]["inputs"]["seed"], 42);
  EXPECT_EQ(prompt["2"]["inputs"]["steps"], 3);
  EXPECT_EQ(prompt["2"]["inputs"]["mode"], "add");
}

TEST_F(Workflow, UiToApiDropsMutedNodesAndTheirLinks) {
  const json prompt = ui_to_api(ui_workflow(), registry_);
  EXPECT_FALSE(prompt.contains("5"));
  EXPECT_FALSE(prompt.contains("12"));
  EXPECT_FALSE(prompt["11"]["inputs"].contains("x"));
}

TEST_F(Workflow, UiToApiPassesBypassedNodeInputOfSameType) {
  const json prompt = ui_to_api(ui_workflow(), registry_);
  EXPECT_FALSE(prompt.contains("6"));
  EXPECT_EQ(prompt["3"]["inputs"]["latent"], json({"2", 0}));
}

TEST_F(Workflow, UiToApiBypassWithoutMatchingInputDropsTheLink) {
  json ui = ui_workflow();
  ui["nodes"][5]["inputs"][1]["link"] = nullptr;  // the bypassed node's FAKE_LATENT input
  const json prompt = ui_to_api(ui, registry_);
  EXPECT_FALSE(prompt["3"]["inputs"].contains("latent"));
}

TEST_F(Workflow, UiToApiResolvesRerouteChainsAndDropsFrontendNodes) {
  json ui = ui_workflow();
  // A second reroute between the first one and the decoder.
  ui["nodes"].push_back(json::parse(R"({"id": 20, "type": "Reroute", "mode": 0,
      "inputs": [{"name": "", "type": "*", "link": 3}],
      "outputs": [{"name": "", "type": "FAKE_MODEL", "links": [11]}]})"));
  ui["links"][2] = json::parse(R"([3, 10, 0, 20, 0, "FAKE_MODEL"])");
  ui["links"].push_back(json::parse(R"([11, 20, 0, 3, 0, "FAKE_MODEL"])"));
  ui["nodes"][2]["inputs"][0]["link"] = 11;
  const json prompt = ui_to_api(ui, registry_);
  EXPECT_EQ(prompt["3"]["inputs"]["model"], json({"1", 0}));
  EXPECT_FALSE(prompt.contains("10"));
  EXPECT_FALSE(prompt.contains("20"));
  EXPECT_FALSE(prompt.contains("8"));   // Note
  EXPECT_FALSE(prompt.contains("13"));  // PrimitiveNode
}

TEST_F(Workflow, UiToApiReadsLinksAsObjects) {
  json ui = ui_workflow();
  json objects = json::array();
  for (const auto& link : ui["links"]) {
    objects.push_back({{"id", link[0]},
                       {"origin_id", link[1]},
                       {"origin_slot", link[2]},
                       {"target_id", link[3]},
                       {"target_slot", link[4]},
                       {"type", link[5]}});
  }
  ui["links"] = objects;
  EXPECT_EQ(ui_to_api(ui, registry_), expected_prompt());
}

TEST_F(Workflow, UiToApiMapsWidgetsValuesObjectByName) {
  json ui = ui_workflow();
  ui["nodes"][0]["widgets_values"] = {{"scale", 3.5}, {"model_name", "b.safetensors"}};
  const json prompt = ui_to_api(ui, registry_);
  EXPECT_EQ(prompt["1"]["inputs"], json::parse(R"({"model_name": "b.safetensors", "scale": 3.5})"));
}

TEST_F(Workflow, UiToApiKeepsUnknownTypesForTheValidator) {
  json ui = ui_workflow();
  ui["nodes"][2]["type"] = "SomeCustomNode";
  const json prompt = ui_to_api(ui, registry_);
  EXPECT_EQ(prompt["3"]["class_type"], "SomeCustomNode");
  EXPECT_EQ(prompt["3"]["inputs"]["latent"], json({"2", 0}));
  const ValidationResult result = validate_prompt(prompt, registry_);
  EXPECT_EQ(result.node_errors["3"]["errors"][0]["type"], "missing_node_type");
}

TEST_F(Workflow, UiToApiRejectsLinkMissingFromLinks) {
  json ui = ui_workflow();
  ui["nodes"][3]["inputs"][0]["link"] = 99;
  try {
    ui_to_api(ui, registry_);
    FAIL();
  } catch (const ValidationError& e) {
    EXPECT_NE(std::string(e.what()).find("node 4 input 'images' uses link 99"), std::string::npos)
        << e.what();
  }
}

TEST_F(Workflow, ToApiPromptDetectsBothFormats) {
  EXPECT_TRUE(is_ui_workflow(ui_workflow()));
  EXPECT_FALSE(is_api_prompt(ui_workflow()));
  EXPECT_TRUE(is_api_prompt(testing::basic_prompt()));
  EXPECT_EQ(to_api_prompt(ui_workflow(), registry_), expected_prompt());
  EXPECT_EQ(to_api_prompt(testing::basic_prompt(), registry_), testing::basic_prompt());
  EXPECT_EQ(to_api_prompt({{"prompt", testing::basic_prompt()}}, registry_),
            testing::basic_prompt());
  EXPECT_THROW(to_api_prompt(json::parse(R"({"a": 1})"), registry_), ValidationError);
}

class Override : public Workflow {
 protected:
  json prompt_ = testing::basic_prompt();
  std::string error_of(const std::string& assignment) {
    try {
      apply_override(prompt_, assignment, registry_);
    } catch (const ValidationError& e) {
      return e.what();
    }
    return "(no error)";
  }
};

TEST_F(Override, SetsByIdTitleAndUniqueClassType) {
  apply_override(prompt_, "2.seed=99", registry_);
  EXPECT_EQ(prompt_["2"]["inputs"]["seed"], 99);
  apply_override(prompt_, "sampler.steps=7", registry_);  // _meta.title
  EXPECT_EQ(prompt_["2"]["inputs"]["steps"], 7);
  apply_override(prompt_, "FakeLoader.scale=2.5", registry_);
  EXPECT_EQ(prompt_["1"]["inputs"]["scale"], 2.5);
  apply_override(prompt_, "Loader.model_name=b.safetensors", registry_);
  EXPECT_EQ(prompt_["1"]["inputs"]["model_name"], "b.safetensors");
  apply_override(prompt_, "FakeText.upper=true", registry_);
  EXPECT_EQ(prompt_["5"]["inputs"]["upper"], true);
  apply_override(prompt_, "5.text=a.b=c d", registry_);  // everything after the first '='
  EXPECT_EQ(prompt_["5"]["inputs"]["text"], "a.b=c d");
  apply_override(prompt_, "1.scale=3", registry_);
  EXPECT_TRUE(prompt_["1"]["inputs"]["scale"].is_number_float());
}

TEST_F(Override, ReplacesALinkOnAWidgetInput) {
  prompt_["2"]["inputs"]["seed"] = json::array({"9", 0});
  apply_override(prompt_, "2.seed=5", registry_);
  EXPECT_EQ(prompt_["2"]["inputs"]["seed"], 5);
}

TEST_F(Override, NamesAmbiguousAndUnknownTargets) {
  prompt_["6"] = prompt_["2"];
  EXPECT_EQ(error_of("FakeSample.seed=1"),
            "--set 'FakeSample.seed=1': class_type 'FakeSample' occurs in nodes 2, 6; use a node "
            "id or a title");
  EXPECT_EQ(error_of("sampler.seed=1"),
            "--set 'sampler.seed=1': title 'sampler' is used by nodes 2, 6; use a node id");
  EXPECT_EQ(error_of("nope.seed=1"),
            "--set 'nope.seed=1': no node has the id, title or class_type 'nope'");
}

TEST_F(Override, RejectsUnknownInputsSocketsAndBadValues) {
  EXPECT_EQ(error_of("2.sede=1"),
            "--set '2.sede=1': FakeSample (node 2) has no input 'sede'; its widget inputs are: "
            "seed, steps, mode, bias");
  EXPECT_EQ(error_of("2.model=x"),
            "--set '2.model=x': input 'model' of FakeSample (node 2) is a FAKE_MODEL socket; "
            "--set only sets widget values");
  EXPECT_EQ(error_of("2.seed=abc"),
            "--set '2.seed=abc': 'abc' is not an integer (input 'seed' is INT)");
  EXPECT_NE(error_of("2.seed=1.5").find("not an integer"), std::string::npos);
  EXPECT_NE(error_of("1.scale=x").find("not a finite number"), std::string::npos);
  EXPECT_NE(error_of("1.scale=nan").find("not a finite number"), std::string::npos);
  EXPECT_NE(error_of("5.upper=maybe").find("true, false, 1 or 0"), std::string::npos);
  EXPECT_EQ(error_of("2seed=1"), "--set '2seed=1': expected TARGET.INPUT=VALUE");
  EXPECT_EQ(error_of("2.seed"), "--set '2.seed': expected TARGET.INPUT=VALUE");
  EXPECT_EQ(error_of("2.=1"), "--set '2.=1': expected TARGET.INPUT=VALUE");
}

TEST(NodeIds, SortNumericallyThenByText) {
  const json prompt = json::parse(R"({"10": {}, "9": {}, "2:1": {}, "100": {}, "a": {}})");
  EXPECT_EQ(sorted_node_ids(prompt), (std::vector<std::string>{"9", "10", "100", "2:1", "a"}));
}

}  // namespace
}  // namespace wan::graph
