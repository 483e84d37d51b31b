// The ComfyUI core nodes wan-run implements natively have ComfyUI's own schema: the same inputs
// (types, defaults, bounds, options, upload buttons), input order, outputs and output names, as
// ComfyUI's /object_info gives them (tests/data/comfyui/core_object_info.json).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "graph/node_registry.h"
#include "nodes/wan_nodes.h"

namespace wan {
namespace {

using nlohmann::json;

json comfy_core_info() {
  std::ifstream in(std::string(WAN_TEST_DATA_DIR) + "/comfyui/core_object_info.json");
  return json::parse(in);
}

// One /object_info input entry in a comparable form: {"type", "options"?, config keys...}.
json normalized_input(const json& entry) {
  json type = entry[0];
  const json config = entry.size() > 1 ? entry[1] : json::object();
  json out = json::object();
  const bool upload = config.value("image_upload", false) || config.value("video_upload", false);
  if (type.is_array()) {
    out["type"] = "COMBO";
    if (!upload) out["options"] = type;
  } else {
    out["type"] = type;
    if (type == "COMBO" && !upload) out["options"] = config.value("options", json::array());
  }
  for (const char* key : {"default", "min", "max", "step", "control_after_generate",
                          "image_upload", "video_upload"})
    if (config.contains(key)) out[key] = config[key];
  if (config.value("multiline", false)) out["multiline"] = true;
  return out;
}

json normalized_fixture_input(json item) {
  if (item.contains("multiline") && !item["multiline"].get<bool>()) item.erase("multiline");
  return item;
}

TEST(ComfyCoreNodes, HaveComfyUIsExactSchema) {
  const json expected = comfy_core_info();
  const json ours = wan::nodes::wan_node_registry().object_info({});
  int checked = 0;
  for (const auto& [name, want] : expected.items()) {
    if (name.front() == '_') continue;
    SCOPED_TRACE(name);
    ASSERT_TRUE(ours.contains(name));
    const auto* schema = wan::nodes::wan_node_registry().find(name);
    ASSERT_NE(schema, nullptr);
    EXPECT_TRUE(schema->is_comfy_core());
    const json& got = ours[name];
    for (const char* section : {"required", "optional"}) {
      const json want_inputs = want["input"].value(section, json::object());
      const json got_inputs = got["input"].value(section, json::object());
      ASSERT_EQ(got_inputs.size(), want_inputs.size()) << section << ": " << got_inputs.dump();
      for (const auto& [input, item] : want_inputs.items()) {
        ASSERT_TRUE(got_inputs.contains(input)) << input;
        EXPECT_EQ(normalized_input(got_inputs[input]), normalized_fixture_input(item)) << input;
      }
    }
    for (const char* section : {"required", "optional", "hidden"})
      EXPECT_EQ(got["input_order"].value(section, json::array()),
                want["input_order"].value(section, json::array()))
          << section;
    EXPECT_EQ(got["output"], want["output"]);
    EXPECT_EQ(got["output_name"], want["output_name"]);
    EXPECT_EQ(got["output_node"], want["output_node"]);
    EXPECT_EQ(got["category"], want["category"]);
    EXPECT_EQ(got["display_name"], want["display_name"]);
    EXPECT_EQ(got["python_module"], want["python_module"]);
    ++checked;
  }
  EXPECT_EQ(checked, 14);
}

// Against every node name of that ComfyUI's /object_info ("_core_names"): a pack node under a
// core name would be ignored by ComfyUI, breaking every workflow that uses it.
TEST(ComfyCoreNodes, NoPackNodeUsesACoreName) {
  const json expected = comfy_core_info();
  const json& core_names = expected["_core_names"];
  ASSERT_GT(core_names.size(), 400u);
  auto is_core = [&](const std::string& name) {
    return std::find(core_names.begin(), core_names.end(), name) != core_names.end();
  };
  for (const auto* schema : wan::nodes::wan_node_registry().schemas()) {
    if (schema->is_comfy_core()) {
      EXPECT_TRUE(expected.contains(schema->name())) << schema->name() << " is not a core node";
    } else {
      EXPECT_FALSE(is_core(schema->name())) << schema->name() << " is a ComfyUI core name";
      EXPECT_EQ(schema->object_info({})["python_module"], "wan_native");
    }
  }
}

}  // namespace
}  // namespace wan
