#include "graph/validator.h"

#include <gtest/gtest.h>

#include "graph/fake_nodes.h"

namespace wan::graph {
namespace {

using nlohmann::json;

class Validator : public ::testing::Test {
 protected:
  // The only error of node `id`; fails when there is not exactly one.
  json single_error(const ValidationResult& result, const std::string& id) {
    EXPECT_FALSE(result.ok);
    EXPECT_TRUE(result.node_errors.contains(id)) << result.to_json().dump(2);
    if (!result.node_errors.contains(id)) return json::object();
    const json& errors = result.node_errors[id]["errors"];
    EXPECT_EQ(errors.size(), 1u) << errors.dump(2);
    return errors.empty() ? json::object() : errors[0];
  }
  ValidationResult validate(const json& prompt) { return validate_prompt(prompt, registry_); }

  NodeRegistry registry_ = testing::make_registry();
  json prompt_ = testing::basic_prompt();
};

TEST_F(Validator, AcceptsAValidPrompt) {
  const ValidationResult result = validate(prompt_);
  EXPECT_TRUE(result.ok) << result.to_json().dump(2);
  EXPECT_TRUE(result.error.is_null());
  EXPECT_TRUE(result.node_errors.empty());
  EXPECT_EQ(result.outputs, std::vector<std::string>{"4"});
}

TEST_F(Validator, ReportsMissingNodeType) {
  prompt_["3"]["class_type"] = "NoSuchDecode";
  const json error = single_error(validate(prompt_), "3");
  EXPECT_EQ(error["type"], "missing_node_type");
  EXPECT_EQ(error["details"], "Node ID '#3'");
  EXPECT_EQ(error["extra_info"]["class_type"], "NoSuchDecode");
  EXPECT_EQ(error["extra_info"]["node_id"], "3");
}

TEST_F(Validator, ReportsNodeWithoutClassTypeAsInvalidPrompt) {
  prompt_["3"].erase("class_type");
  const json error = single_error(validate(prompt_), "3");
  EXPECT_EQ(error["type"], "invalid_prompt");
  EXPECT_EQ(error["message"], "Cannot execute because a node is missing the class_type property.");
}

TEST_F(Validator, ReportsPromptWithoutOutputs) {
  prompt_.erase("4");
  const ValidationResult result = validate(prompt_);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.error["type"], "prompt_no_outputs");
  EXPECT_EQ(result.error["message"], "Prompt has no outputs");
  EXPECT_TRUE(result.node_errors.empty());
}

TEST_F(Validator, ReportsRequiredInputMissing) {
  prompt_["2"]["inputs"].erase("steps");
  const ValidationResult result = validate(prompt_);
  const json error = single_error(result, "2");
  EXPECT_EQ(error["type"], "required_input_missing");
  EXPECT_EQ(error["message"], "Required input is missing");
  EXPECT_EQ(error["details"], "steps");
  EXPECT_EQ(error["extra_info"]["input_name"], "steps");
  EXPECT_EQ(result.node_errors["2"]["class_type"], "FakeSample");
  EXPECT_EQ(result.node_errors["2"]["dependent_outputs"], json({"4"}));
  EXPECT_EQ(result.error["type"], "prompt_outputs_failed_validation");
  EXPECT_EQ(result.error["message"], "Prompt outputs failed validation");
}

TEST_F(Validator, OptionalInputMayBeAbsent) {
  prompt_["2"]["inputs"].erase("bias");
  EXPECT_TRUE(validate(prompt_).ok);
}

TEST_F(Validator, ReportsBadLinkedInput) {
  prompt_["3"]["inputs"]["latent"] = json::array({"2", 0, 1});  // malformed
  json error = single_error(validate(prompt_), "3");
  EXPECT_EQ(error["type"], "bad_linked_input");
  EXPECT_EQ(error["message"], "Bad linked input, must be a length-2 list of [node_id, slot_index]");
  EXPECT_EQ(error["extra_info"]["input_name"], "latent");

  prompt_["3"]["inputs"]["latent"] = json::array({"99", 0});  // missing node
  error = single_error(validate(prompt_), "3");
  EXPECT_EQ(error["type"], "bad_linked_input");
  EXPECT_EQ(error["message"], "Linked node does not exist");

  prompt_["3"]["inputs"]["latent"] = json::array({"2", 1});  // FakeSample has one output
  error = single_error(validate(prompt_), "3");
  EXPECT_EQ(error["type"], "bad_linked_input");
  EXPECT_EQ(error["message"], "Linked output index out of range");
}

TEST_F(Validator, ReportsReturnTypeMismatch) {
  prompt_["3"]["inputs"]["latent"] = json::array({"1", 0});  // FAKE_MODEL into FAKE_LATENT
  const json error = single_error(validate(prompt_), "3");
  EXPECT_EQ(error["type"], "return_type_mismatch");
  EXPECT_EQ(error["message"], "Return type mismatch between linked nodes");
  EXPECT_EQ(error["details"], "latent, received_type(FAKE_MODEL) mismatch input_type(FAKE_LATENT)");
  EXPECT_EQ(error["extra_info"]["received_type"], "FAKE_MODEL");
  EXPECT_EQ(error["extra_info"]["linked_node"], json({"1", 0}));
}

TEST_F(Validator, AcceptsLinkIntoUnionType) {
  prompt_["4"]["inputs"]["images"] = json::array({"2", 0});  // FAKE_LATENT into IMAGE,FAKE_LATENT
  EXPECT_TRUE(validate(prompt_).ok);
}

TEST_F(Validator, ReportsInvalidInputType) {
  prompt_["2"]["inputs"]["seed"] = "ten";
  json error = single_error(validate(prompt_), "2");
  EXPECT_EQ(error["type"], "invalid_input_type");
  EXPECT_EQ(error["message"], "Failed to convert an input value to a INT value");
  EXPECT_EQ(error["extra_info"]["input_name"], "seed");
  EXPECT_EQ(error["extra_info"]["received_value"], "ten");

  prompt_["2"]["inputs"]["seed"] = 1.5;  // no silent rounding
  EXPECT_EQ(single_error(validate(prompt_), "2")["type"], "invalid_input_type");
  prompt_["2"]["inputs"]["seed"] = 7.0;  // integral floats are integers, as int() takes them
  EXPECT_TRUE(validate(prompt_).ok);

  prompt_["2"]["inputs"]["model"] = "a.safetensors";  // a literal for a socket
  error = single_error(validate(prompt_), "2");
  EXPECT_EQ(error["type"], "invalid_input_type");
  EXPECT_EQ(error["extra_info"]["input_name"], "model");
}

TEST_F(Validator, ReportsValueSmallerThanMin) {
  prompt_["2"]["inputs"]["steps"] = 0;
  const json error = single_error(validate(prompt_), "2");
  EXPECT_EQ(error["type"], "value_smaller_than_min");
  EXPECT_EQ(error["message"], "Value 0 smaller than min of 1");
  EXPECT_EQ(error["details"], "steps");
  EXPECT_EQ(error["extra_info"]["input_config"],
            json::parse(R"(["INT", {"default": 4, "min": 1, "max": 100}])"));
}

TEST_F(Validator, ReportsValueBiggerThanMax) {
  prompt_["1"]["inputs"]["scale"] = 10.5;
  const json error = single_error(validate(prompt_), "1");
  EXPECT_EQ(error["type"], "value_bigger_than_max");
  EXPECT_EQ(error["message"], "Value 10.5 bigger than max of 10.0");
  EXPECT_EQ(error["extra_info"]["input_name"], "scale");
}

TEST_F(Validator, ReportsValueNotInList) {
  prompt_["1"]["inputs"]["model_name"] = "c.safetensors";
  const json error = single_error(validate(prompt_), "1");
  EXPECT_EQ(error["type"], "value_not_in_list");
  EXPECT_EQ(error["message"], "Value not in list");
  EXPECT_EQ(error["details"],
            "model_name: 'c.safetensors' not in ['a.safetensors', 'b.safetensors']");
  EXPECT_EQ(error["extra_info"]["received_value"], "c.safetensors");
}

TEST_F(Validator, ReportsDependencyCycle) {
  // 2.extra <- 6, 6.extra <- 2: Sample nodes feeding each other.
  prompt_["6"] = {
      {"class_type", "FakeSample"},
      {"inputs",
       {{"model", {"1", 0}}, {"seed", 1}, {"steps", 1}, {"mode", "add"}, {"extra", {"2", 0}}}}};
  prompt_["2"]["inputs"]["extra"] = json::array({"6", 0});
  const ValidationResult result = validate(prompt_);
  for (const char* id : {"2", "6"}) {
    const json error = single_error(result, id);
    EXPECT_EQ(error["type"], "dependency_cycle");
    EXPECT_EQ(error["message"], "Dependency cycle detected");
    EXPECT_EQ(error["extra_info"]["cycle"].size(), 2u);
  }
  EXPECT_FALSE(result.node_errors.contains("3"));  // downstream nodes carry no error of their own
}

TEST_F(Validator, ReportsCustomValidationFailed) {
  prompt_["1"]["inputs"]["model_name"] = "b.safetensors";
  prompt_["2"]["inputs"]["mode"] = "mul";
  const json error = single_error(validate(prompt_), "2");
  EXPECT_EQ(error["type"], "custom_validation_failed");
  EXPECT_EQ(error["message"], "Custom validation failed for node");
  EXPECT_EQ(error["details"], "mode - b.safetensors cannot sample in mul mode; use add");
  EXPECT_EQ(error["extra_info"]["input_name"], "mode");
}

TEST_F(Validator, SkipsCustomValidationWhenUpstreamIsInvalid) {
  prompt_["1"]["inputs"]["model_name"] = "b.safetensors";
  prompt_["1"]["inputs"]["scale"] = -1;
  prompt_["2"]["inputs"]["mode"] = "mul";
  const ValidationResult result = validate(prompt_);
  EXPECT_EQ(single_error(result, "1")["type"], "value_smaller_than_min");
  EXPECT_FALSE(result.node_errors.contains("2"));
}

TEST_F(Validator, ReportsExceptionDuringValidation) {
  const json prompt =
      json::parse(R"({"1": {"class_type": "FakeBadValidate", "inputs": {"n": 1}}})");
  const json error = single_error(validate(prompt), "1");
  EXPECT_EQ(error["type"], "exception_during_validation");
  EXPECT_EQ(error["message"], "Exception when validating node");
  EXPECT_EQ(error["details"], "validator crashed");
}

TEST_F(Validator, CollectsAllErrorsAtOnce) {
  prompt_["1"]["inputs"]["model_name"] = "zzz";
  prompt_["2"]["inputs"]["steps"] = 1000;
  prompt_["2"]["inputs"]["seed"] = -1;
  prompt_["3"]["inputs"].erase("model");
  prompt_["7"] = {{"class_type", "Unknown"}, {"inputs", json::object()}};
  const ValidationResult result = validate(prompt_);
  ASSERT_FALSE(result.ok);
  EXPECT_EQ(result.node_errors["1"]["errors"].size(), 1u);
  EXPECT_EQ(result.node_errors["2"]["errors"].size(), 2u);
  EXPECT_EQ(result.node_errors["3"]["errors"][0]["type"], "required_input_missing");
  EXPECT_EQ(result.node_errors["7"]["errors"][0]["type"], "missing_node_type");
  EXPECT_EQ(result.node_errors["7"]["dependent_outputs"], json::array());
  const std::string details = result.error["details"];
  EXPECT_NE(details.find("FakeSample (node 2): Value 1000 bigger than max of 100"),
            std::string::npos)
      << details;
  // The whole report has ComfyUI's top-level shape.
  const json report = result.to_json();
  EXPECT_TRUE(report.contains("error"));
  EXPECT_TRUE(report.contains("node_errors"));
  for (const auto& key : {"type", "message", "details", "extra_info"}) {
    EXPECT_TRUE(report["error"].contains(key)) << key;
  }
  const InvalidPrompt exception(report);
  EXPECT_NE(std::string(exception.what()).find("node 3"), std::string::npos) << exception.what();
}

TEST_F(Validator, ValidatesOnlyWhatOutputsNeed) {
  prompt_["5"]["inputs"].erase("text");  // node 5 feeds no output, as in ComfyUI
  EXPECT_TRUE(validate(prompt_).ok);
}

TEST_F(Validator, LiteralValueConvertsPerSchemaType) {
  EXPECT_EQ(literal_value(json(5), Int("n")).as_int(), 5);
  EXPECT_THROW(literal_value(json(uint64_t{1} << 63), Int("n")), ValidationError);
  EXPECT_THROW(literal_value(json("5"), Int("n")), ValidationError);
  EXPECT_DOUBLE_EQ(literal_value(json(2), Float("f")).as_float(), 2.0);
  EXPECT_TRUE(literal_value(json(true), Boolean("b")).as_bool());
  EXPECT_THROW(literal_value(json(1), Boolean("b")), ValidationError);
  EXPECT_EQ(literal_value(json("x"), Choice("c", {"x"})).as_string(), "x");
  EXPECT_THROW(literal_value(json("x"), Socket("s", "IMAGE")), ValidationError);
}

}  // namespace
}  // namespace wan::graph
