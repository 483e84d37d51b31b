// LoadImage (ComfyUI core, nodes.py): an image from the input folder as IMAGE [F, H, W, 3] and
// MASK [F, H, W], the mask being 1 - alpha as ComfyUI gives it (0 where there is no alpha).
#include "media/image_file.h"
#include "nodes/node_support.h"
#include "plan/plan_context.h"

namespace wan::nodes {

class LoadImage : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("LoadImage", "image")
        .comfy_core("nodes")
        .display_name("Load Image")
        .input(graph::Choice("image", std::vector<std::string>{}).upload("image").input_file())
        .output("IMAGE", "IMAGE")
        .output("MASK", "MASK");
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    const auto loaded = media::load_image(input_path(run, in.string("image")));
    return {loaded.image, loaded.mask};
  }

  // The decoded file stays in CPU memory, small next to the models; its size is not known
  // before decoding, so it is not counted (docs/memory_plan.md).
  bool plan(const graph::Values&, plan::PlanContext&) const override { return true; }
};

void register_load_image(graph::NodeRegistry& registry) {
  registry.add<LoadImage>();
}

}  // namespace wan::nodes
