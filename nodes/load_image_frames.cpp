// WanLoadImageFrames: a folder of frames or a glob such as frames/*.png (sorted by name), or any
// video file, as IMAGE [F, H, W, 3]. ComfyUI core has no loader of frame folders; its LoadVideo
// gives a VIDEO from one file.
#include "media/video_file.h"
#include "nodes/node_support.h"
#include "plan/plan_context.h"

namespace wan::nodes {

class WanLoadImageFrames : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("WanLoadImageFrames", kCategoryImage)
        .display_name("Wan Load Image Frames")
        .input(graph::String("frames").default_to("")
                   .input_file(graph::InputFiles::kFileOrPattern)
                   .tooltip("a folder of frames, a glob such as frames/*.png (sorted by name), "
                            "or a video file; relative to the input folder"))
        .input(graph::Int("frame_load_cap").default_to(0).min(0).max(100000)
                   .tooltip("0 = all frames"))
        .output("IMAGE", "images");
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    return {media::load_video(input_path(run, in.string("frames")), in.integer("frame_load_cap"))};
  }

  // The frames as IMAGE, sized from the image files' headers or the video file's container
  // (hold_loaded_frames). A video that declares no frame count or duration is not counted
  // (docs/memory_plan.md).
  bool plan(const graph::Values& in, plan::PlanContext& plan) const override {
    const auto extent = planned_image_input(plan, in.string("frames"), in.integer("frame_load_cap"));
    if (extent) plan.set_output(0, hold_loaded_frames(plan, *extent));
    return true;
  }
};

void register_load_image_frames(graph::NodeRegistry& registry) {
  registry.add<WanLoadImageFrames>();
}

}  // namespace wan::nodes
