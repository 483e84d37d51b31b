// ImageToMask (ComfyUI core, comfy_extras/nodes_mask.py): one channel of an IMAGE as a MASK.
#include "media/image_file.h"
#include "nodes/node_support.h"
#include "plan/plan_context.h"

namespace wan::nodes {

class ImageToMask : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("ImageToMask", "mask")
        .comfy_core("comfy_extras.nodes_mask")
        .display_name("Convert Image to Mask")
        .input(graph::Socket("image", "IMAGE"))
        .input(graph::Choice("channel", {"red", "green", "blue", "alpha"}))
        .output("MASK", "MASK");
  }

  graph::Values execute(const graph::Values& in, graph::RunContext&) override {
    return {media::image_to_mask(in.tensor("image"), in.string("channel"))};
  }

  // One channel of the image: a third of its bytes, in CPU memory.
  bool plan(const graph::Values&, plan::PlanContext& plan) const override {
    plan::PlannedValue mask;
    if (const plan::PlannedValue* image = plan.input("image")) mask.cpu_bytes = image->cpu_bytes / 3;
    plan.hold(mask);
    plan.set_output(0, mask);
    return true;
  }
};

void register_image_to_mask(graph::NodeRegistry& registry) {
  registry.add<ImageToMask>();
}

}  // namespace wan::nodes
