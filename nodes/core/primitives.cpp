// The primitive nodes of ComfyUI core (comfy_extras/nodes_primitive.py): a widget value as an
// output, so one value can feed several inputs.
#include <limits>

#include "nodes/node_support.h"
#include "plan/plan_context.h"

namespace wan::nodes {
namespace {

// ComfyUI bounds both INT and FLOAT primitives by +-sys.maxsize.
constexpr int64_t kPrimitiveBound = std::numeric_limits<int64_t>::max();

graph::NodeSchema primitive_schema(const char* name, const char* display, graph::Input value,
                                   const char* type) {
  return graph::NodeSchema(name, "utils/primitive")
      .comfy_core("comfy_extras.nodes_primitive")
      .display_name(display)
      .input(std::move(value))
      .output(type, type);
}

}  // namespace

class PrimitiveInt : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return primitive_schema("PrimitiveInt", "Int",
                            graph::Int("value").min(-kPrimitiveBound).max(kPrimitiveBound)
                                .control_after_generate(),
                            graph::kInt);
  }
  graph::Values execute(const graph::Values& in, graph::RunContext&) override {
    return {in.integer("value")};
  }

  bool plan(const graph::Values&, plan::PlanContext&) const override { return true; }  // a value
};

class PrimitiveFloat : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return primitive_schema("PrimitiveFloat", "Float",
                            graph::Float("value").min(-kPrimitiveBound).max(kPrimitiveBound),
                            graph::kFloat);
  }
  graph::Values execute(const graph::Values& in, graph::RunContext&) override {
    return {in.number("value")};
  }

  bool plan(const graph::Values&, plan::PlanContext&) const override { return true; }  // a value
};

class PrimitiveString : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return primitive_schema("PrimitiveString", "String", graph::String("value").multiline(false),
                            graph::kString);
  }
  graph::Values execute(const graph::Values& in, graph::RunContext&) override {
    return {in.string("value")};
  }

  bool plan(const graph::Values&, plan::PlanContext&) const override { return true; }  // a value
};

class PrimitiveStringMultiline : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return primitive_schema("PrimitiveStringMultiline", "String (Multiline)",
                            graph::String("value").multiline(), graph::kString);
  }
  graph::Values execute(const graph::Values& in, graph::RunContext&) override {
    return {in.string("value")};
  }

  bool plan(const graph::Values&, plan::PlanContext&) const override { return true; }  // a value
};

class PrimitiveBoolean : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return primitive_schema("PrimitiveBoolean", "Boolean", graph::Boolean("value"),
                            graph::kBoolean);
  }
  graph::Values execute(const graph::Values& in, graph::RunContext&) override {
    return {in.get("value").as_bool()};
  }

  bool plan(const graph::Values&, plan::PlanContext&) const override { return true; }  // a value
};

void register_primitive_nodes(graph::NodeRegistry& registry) {
  registry.add<PrimitiveInt>();
  registry.add<PrimitiveFloat>();
  registry.add<PrimitiveString>();
  registry.add<PrimitiveStringMultiline>();
  registry.add<PrimitiveBoolean>();
}

}  // namespace wan::nodes
