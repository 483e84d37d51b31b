// Small nodes for the graph tests: a loader that counts its loads, a stepping sampler, a decoder,
// savers, and nodes that fail. They mimic the shape of the Wan nodes without any model.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "graph/node_registry.h"

namespace wan::graph::testing {

// How often each fake node class executed since the last reset().
inline std::map<std::string, int>& runs() {
  static std::map<std::string, int> counts;
  return counts;
}
inline std::vector<at::Tensor>& saved() {
  static std::vector<at::Tensor> tensors;
  return tensors;
}
inline void reset() {
  runs().clear();
  saved().clear();
}

struct FakeModel : Object {
  std::string name;
  double scale = 1;
  std::string type() const override { return "FAKE_MODEL"; }
};

class FakeLoader : public Node {
 public:
  static NodeSchema schema() {
    return NodeSchema("FakeLoader", "test/loaders")
        .display_name("Fake Loader")
        .description("Loads nothing, counts loads.")
        .input(Choice("model_name", {"a.safetensors", "b.safetensors"}).tooltip("weights file"))
        .input(Float("scale").default_to(1.0).min(0.0).max(10.0).step(0.5))
        .output("FAKE_MODEL", "model");
  }
  Values execute(const Values& in, RunContext&) override {
    ++runs()["FakeLoader"];
    auto model = std::make_shared<FakeModel>();
    model->name = in.string("model_name");
    model->scale = in.number("scale");
    return {model};
  }
};

// latent = (seed + bias) * scale, as a [1] tensor, after `steps` reported steps.
class FakeSample : public Node {
 public:
  static NodeSchema schema() {
    return NodeSchema("FakeSample", "test/sampling")
        .input(Socket("model", "FAKE_MODEL"))
        .input(Int("seed").default_to(0).min(0).max(int64_t{1} << 53).control_after_generate())
        .input(Int("steps").default_to(4).min(1).max(100))
        .input(Choice("mode", {"add", "mul"}).default_to("add"))
        .input(Float("bias").default_to(0.5).optional())
        .input(Socket("extra", "FAKE_LATENT").optional())
        .output("FAKE_LATENT", "latent");
  }
  Values execute(const Values& in, RunContext& run) override {
    ++runs()["FakeSample"];
    const int64_t steps = in.integer("steps");
    for (int64_t i = 0; i < steps; ++i) run.report_step(i + 1, steps);
    const auto model = in.object<FakeModel>("model");
    double value = (static_cast<double>(in.integer("seed")) + in.number("bias")) * model->scale;
    if (in.has("extra")) value += in.tensor("extra").item<double>();
    return {at::full({1}, value, at::kDouble)};
  }
  // Cross-node check: a model loaded from b.safetensors cannot sample in "mul" mode.
  void validate(const NodeView& node, ValidationIssues& issues) const override {
    const NodeView* loader = node.upstream("model").first;
    if (loader && loader->literals().has("model_name") &&
        loader->literals().string("model_name") == "b.safetensors" &&
        node.literals().string("mode") == "mul") {
      issues.add("mode", "b.safetensors cannot sample in mul mode; use add");
    }
  }
};

class FakeDecode : public Node {
 public:
  static NodeSchema schema() {
    return NodeSchema("FakeDecode", "test/latent")
        .input(Socket("model", "FAKE_MODEL"))
        .input(Socket("latent", "FAKE_LATENT"))
        .output("IMAGE");
  }
  Values execute(const Values& in, RunContext&) override {
    ++runs()["FakeDecode"];
    return {in.tensor("latent") * 2};
  }
};

class FakeSave : public Node {
 public:
  static NodeSchema schema() {
    return NodeSchema("FakeSave", "test/output")
        .input(Socket("images", "IMAGE,FAKE_LATENT"))
        .input(String("filename_prefix").default_to("out"))
        .output_node();
  }
  Values execute(const Values& in, RunContext&) override {
    ++runs()["FakeSave"];
    saved().push_back(in.tensor("images"));
    return {};
  }
};

class FakeText : public Node {
 public:
  static NodeSchema schema() {
    return NodeSchema("FakeText", "test/text")
        .input(String("text").multiline().default_to(""))
        .input(Boolean("upper").default_to(false))
        .output("FAKE_TEXT", "text");
  }
  Values execute(const Values& in, RunContext&) override {
    ++runs()["FakeText"];
    return {in.string("text")};
  }
};

// An integer node for chains: out = x + y, where x is an optional INT socket.
class FakeAdd : public Node {
 public:
  static NodeSchema schema() {
    return NodeSchema("FakeAdd", "test/math")
        .input(Int("y").default_to(0).min(-1000000).max(1000000))
        .input(Int("x").force_input().optional())
        .output("INT");
  }
  Values execute(const Values& in, RunContext&) override {
    ++runs()["FakeAdd"];
    return {(in.has("x") ? in.integer("x") : 0) + in.integer("y")};
  }
};

class FakeFail : public Node {
 public:
  static NodeSchema schema() {
    return NodeSchema("FakeFail", "test").input(Socket("latent", "FAKE_LATENT")).output("IMAGE");
  }
  Values execute(const Values&, RunContext&) override { throw std::runtime_error("boom"); }
};

// validate() itself throws: the validator reports exception_during_validation.
class FakeBadValidate : public Node {
 public:
  static NodeSchema schema() {
    return NodeSchema("FakeBadValidate", "test").input(Int("n").default_to(1)).output_node();
  }
  Values execute(const Values&, RunContext&) override { return {}; }
  void validate(const NodeView&, ValidationIssues&) const override {
    throw std::runtime_error("validator crashed");
  }
};

inline NodeRegistry make_registry() {
  NodeRegistry registry;
  registry.add<FakeLoader>();
  registry.add<FakeSample>();
  registry.add<FakeDecode>();
  registry.add<FakeSave>();
  registry.add<FakeText>();
  registry.add<FakeAdd>();
  registry.add<FakeFail>();
  registry.add<FakeBadValidate>();
  return registry;
}

// Loader(1) -> Sample(2) -> Decode(3) -> Save(4), plus Text(5) that nothing reads.
inline nlohmann::json basic_prompt() {
  return nlohmann::json::parse(R"({
    "1": {"class_type": "FakeLoader", "inputs": {"model_name": "a.safetensors", "scale": 2.0},
          "_meta": {"title": "Loader"}},
    "2": {"class_type": "FakeSample",
          "inputs": {"model": ["1", 0], "seed": 10, "steps": 3, "mode": "add"},
          "_meta": {"title": "sampler"}},
    "3": {"class_type": "FakeDecode", "inputs": {"model": ["1", 0], "latent": ["2", 0]}},
    "4": {"class_type": "FakeSave", "inputs": {"images": ["3", 0], "filename_prefix": "x"}},
    "5": {"class_type": "FakeText", "inputs": {"text": "unused", "upper": false}}
  })");
}

}  // namespace wan::graph::testing
