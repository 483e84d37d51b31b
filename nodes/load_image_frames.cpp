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

  // The frames as IMAGE (float32 RGB), sized from the image files' headers: each decoded frame
  // is held until they are joined (twice the IMAGE at the end), the last one's decoding beside
  // them (28 bytes a pixel, as LoadImage). A video file's frames are known only by decoding it:
  // not counted (docs/memory_plan.md).
  bool plan(const graph::Values& in, plan::PlanContext& plan) const override {
    const auto extent = planned_image_input(plan, in.string("frames"), in.integer("frame_load_cap"));
    if (!extent) return true;
    const int64_t frame = extent->height * extent->width;
    plan::PlannedValue images;
    images.shape.frames = extent->frames;
    images.shape.height = extent->height;
    images.shape.width = extent->width;
    images.cpu_bytes = 12 * extent->frames * frame;
    plan.hold(images, std::max(2 * images.cpu_bytes, images.cpu_bytes + 16 * frame));
    plan.set_output(0, images);
    return true;
  }
};

void register_load_image_frames(graph::NodeRegistry& registry) {
  registry.add<WanLoadImageFrames>();
}

}  // namespace wan::nodes
