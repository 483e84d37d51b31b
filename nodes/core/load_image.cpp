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

  // IMAGE (float32 RGB) and MASK (float32) of the file's frames, sized from its header. Decoding
  // holds the RGBA bytes and both float32 steps of the conversion at once: 28 bytes a pixel.
  bool plan(const graph::Values& in, plan::PlanContext& plan) const override {
    const auto extent = planned_image_input(plan, in.string("image"), std::nullopt);
    if (!extent) return true;
    const int64_t pixels = extent->frames * extent->height * extent->width;
    plan::PlannedValue image, mask;
    image.shape.frames = mask.shape.frames = extent->frames;
    image.shape.height = mask.shape.height = extent->height;
    image.shape.width = mask.shape.width = extent->width;
    image.cpu_bytes = 12 * pixels;
    mask.cpu_bytes = 4 * pixels;
    plan.hold(image, 28 * pixels);
    plan.hold(mask);
    plan.set_output(0, image);
    plan.set_output(1, mask);
    return true;
  }
};

void register_load_image(graph::NodeRegistry& registry) {
  registry.add<LoadImage>();
}

}  // namespace wan::nodes
