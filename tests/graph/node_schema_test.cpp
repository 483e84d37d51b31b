#include "graph/node_schema.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "graph/fake_nodes.h"
#include "graph/node_registry.h"

namespace wan::graph {
namespace {

using nlohmann::json;
using testing::FakeSample;

TEST(NodeSchema, RejectsDuplicateInputIds) {
  NodeSchema schema("Dup", "test");
  schema.input(Int("seed"));
  try {
    schema.input(Float("seed"));
    FAIL() << "duplicate accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'Dup'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'seed'"), std::string::npos) << e.what();
  }
}

TEST(NodeSchema, ExportsComfyObjectInfoShape) {
  const json info = FakeSample::schema().object_info({});
  EXPECT_EQ(info["name"], "FakeSample");
  EXPECT_EQ(info["display_name"], "FakeSample");
  EXPECT_EQ(info["category"], "test/sampling");
  EXPECT_EQ(info["output_node"], false);
  EXPECT_EQ(info["description"], "");
  EXPECT_EQ(info["output"], json({"FAKE_LATENT"}));
  EXPECT_EQ(info["output_name"], json({"latent"}));
  EXPECT_EQ(info["output_is_list"], json({false}));
  // Sockets without options are a one-element list, widgets [type, {options}].
  EXPECT_EQ(info["input"]["required"]["model"], json({"FAKE_MODEL"}));
  EXPECT_EQ(info["input"]["required"]["seed"],
            json::parse(R"(["INT", {"default": 0, "min": 0, "max": 9007199254740992,
                                    "control_after_generate": true}])"));
  EXPECT_EQ(info["input"]["required"]["mode"],
            json::parse(R"([["add", "mul"], {"default": "add"}])"));
  EXPECT_EQ(info["input"]["optional"]["bias"], json::parse(R"(["FLOAT", {"default": 0.5}])"));
  EXPECT_EQ(info["input"]["optional"]["extra"], json({"FAKE_LATENT"}));
  EXPECT_EQ(info["input_order"]["required"], json({"model", "seed", "steps", "mode"}));
  EXPECT_EQ(info["input_order"]["optional"], json({"bias", "extra"}));

  const json loader = testing::FakeLoader::schema().object_info({});
  EXPECT_EQ(loader["display_name"], "Fake Loader");
  EXPECT_EQ(loader["description"], "Loads nothing, counts loads.");
  EXPECT_EQ(loader["input"]["required"]["model_name"],
            json::parse(R"([["a.safetensors", "b.safetensors"], {"tooltip": "weights file"}])"));
  EXPECT_EQ(loader["input"]["required"]["scale"],
            json::parse(R"(["FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.5}])"));
  EXPECT_FALSE(loader["input"].contains("optional"));

  const json text = testing::FakeText::schema().object_info({});
  EXPECT_EQ(text["input"]["required"]["text"][1]["multiline"], true);
  const json save = testing::FakeSave::schema().object_info({});
  EXPECT_EQ(save["output_node"], true);
  EXPECT_EQ(save["output"], json::array());
  const json add = testing::FakeAdd::schema().object_info({});
  EXPECT_EQ(add["input"]["optional"]["x"], json::parse(R"(["INT", {"forceInput": true}])"));
}

TEST(NodeSchema, ModelFileListsFilesUnderModelsFolder) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / "wan_graph_model_files";
  fs::remove_all(root);
  fs::create_directories(root / "vae" / "sub");
  for (const char* name : {"vae/b.safetensors", "vae/a.pth", "vae/sub/c.sft", "vae/readme.txt",
                           "vae/shards.safetensors.index.json"}) {
    std::ofstream(root / name) << "x";
  }
  const Input input = ModelFile("model_name", "vae");
  EXPECT_TRUE(input.is_combo());
  EXPECT_EQ(input.combo_options(root),
            (std::vector<std::string>{"a.pth", "b.safetensors", "shards.safetensors.index.json",
                                      "sub/c.sft"}));
  EXPECT_TRUE(input.combo_options(root / "nowhere").empty());
  EXPECT_EQ(input.object_info(root)[0],
            json({"a.pth", "b.safetensors", "shards.safetensors.index.json", "sub/c.sft"}));
  fs::remove_all(root);
}

TEST(NodeSchema, TypesCompatibleAcceptsUnionsAndWildcards) {
  const Input image = Socket("images", "IMAGE,FAKE_LATENT");
  EXPECT_TRUE(types_compatible("IMAGE", image));
  EXPECT_TRUE(types_compatible("FAKE_LATENT", image));
  EXPECT_FALSE(types_compatible("MASK", image));
  EXPECT_TRUE(types_compatible("*", image));
  EXPECT_TRUE(types_compatible("MASK", Socket("any", "*")));
  EXPECT_FALSE(types_compatible("WAN_VAE", Socket("dit", "WAN_DIT")));
}

class ReturnsSeven : public Node {
 public:
  static NodeSchema schema() { return NodeSchema("ReturnsSeven", "test").output("INT"); }
  Values execute(const Values&, RunContext&) override { return {7}; }
};

TEST(NodeRegistry, AddRegistersTheSchemaAndTheFactory) {
  NodeRegistry registry;
  registry.add<ReturnsSeven>();
  const NodeSchema* schema = registry.find("ReturnsSeven");
  ASSERT_NE(schema, nullptr);
  EXPECT_EQ(schema->outputs().at(0).type, "INT");
  RunContext run;
  EXPECT_EQ(registry.create("ReturnsSeven")->execute({}, run)[0].as_int(), 7);
  EXPECT_TRUE(registry.object_info({}).contains("ReturnsSeven"));
}

TEST(NodeRegistry, RejectsDuplicateClassTypeAndUnknownCreate) {
  NodeRegistry registry = testing::make_registry();
  EXPECT_THROW(registry.add<FakeSample>(), std::invalid_argument);
  EXPECT_THROW(registry.create("NoSuchNode"), ValidationError);
  EXPECT_EQ(registry.schemas().front()->name(), "FakeAdd");  // sorted
}

TEST(Values, AccessorsNameTheNodeAndInput) {
  Values in;
  in.set_owner("Sample (node 12)");
  in.set("seed", std::string("abc"));
  in.set("steps", 4);
  in.set("cfg", 5.0);
  in.set("latent", at::zeros({2}));
  EXPECT_EQ(in.integer("steps"), 4);
  EXPECT_DOUBLE_EQ(in.number("cfg"), 5.0);
  EXPECT_DOUBLE_EQ(in.number("steps"), 4.0);  // INT reads as FLOAT
  EXPECT_EQ(in.tensor("latent").numel(), 2);
  try {
    in.integer("seed");
    FAIL();
  } catch (const ValidationError& e) {
    EXPECT_STREQ(e.what(), "Sample (node 12) input 'seed': expected INT, got STRING");
  }
  try {
    in.string("missing");
    FAIL();
  } catch (const ValidationError& e) {
    EXPECT_STREQ(e.what(), "Sample (node 12) input 'missing': no value; connect it or set it");
  }
  in.set("model", std::make_shared<testing::FakeModel>());
  EXPECT_EQ(in.object<testing::FakeModel>("model")->type(), "FAKE_MODEL");
  struct Other : Object {
    std::string type() const override { return "OTHER"; }
  };
  in.set("other", std::make_shared<Other>());
  try {
    in.object<testing::FakeModel>("other");
    FAIL();
  } catch (const ValidationError& e) {
    EXPECT_NE(std::string(e.what()).find("input 'other': got OTHER"), std::string::npos);
  }
  EXPECT_FALSE(in.has("nothing"));
  const Values outputs = {at::ones({1}), int64_t{3}, true};
  EXPECT_EQ(outputs.size(), 3u);
  EXPECT_TRUE(outputs[2].as_bool());
  EXPECT_THROW(outputs[3], ValidationError);
}

}  // namespace
}  // namespace wan::graph
