// The primitive nodes of ComfyUI core (comfy_extras/nodes_primitive.py): a widget value as an
// output, so one value can feed several inputs.
#include <limits>

#include "nodes/node_support.h"

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
};
WAN_REGISTER_NODE(PrimitiveInt);

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
};
WAN_REGISTER_NODE(PrimitiveFloat);

class PrimitiveString : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return primitive_schema("PrimitiveString", "String", graph::String("value").multiline(false),
                            graph::kString);
  }
  graph::Values execute(const graph::Values& in, graph::RunContext&) override {
    return {in.string("value")};
  }
};
WAN_REGISTER_NODE(PrimitiveString);

class PrimitiveStringMultiline : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return primitive_schema("PrimitiveStringMultiline", "String (Multiline)",
                            graph::String("value").multiline(), graph::kString);
  }
  graph::Values execute(const graph::Values& in, graph::RunContext&) override {
    return {in.string("value")};
  }
};
WAN_REGISTER_NODE(PrimitiveStringMultiline);

class PrimitiveBoolean : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return primitive_schema("PrimitiveBoolean", "Boolean", graph::Boolean("value"),
                            graph::kBoolean);
  }
  graph::Values execute(const graph::Values& in, graph::RunContext&) override {
    return {in.get("value").as_bool()};
  }
};
WAN_REGISTER_NODE(PrimitiveBoolean);

}  // namespace wan::nodes
