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

  // The decoded file stays in CPU memory, small next to the models; its size is not known
  // before decoding, so it is not counted (docs/memory_plan.md).
  bool plan(const graph::Values&, plan::PlanContext&) const override { return true; }
};

void register_load_image_frames(graph::NodeRegistry& registry) {
  registry.add<WanLoadImageFrames>();
}

}  // namespace wan::nodes
