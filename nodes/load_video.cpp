// LoadVideo: a video file, a folder of frames or a glob, as IMAGE [F, H, W, 3].
#include "media/video_file.h"
#include "nodes/node_support.h"

namespace wan::nodes {

class LoadVideo : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("LoadVideo", kCategoryImage)
        .display_name("Wan Load Video")
        .input(graph::String("video").default_to("")
                   .tooltip("a video file, a folder of frames, or a glob such as frames/*.png "
                            "(sorted by name); relative to input/"))
        .input(graph::Int("frame_load_cap").default_to(0).min(0).max(100000)
                   .tooltip("0 = all frames"))
        .output("IMAGE", "images");
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    return {media::load_video(input_path(run, in.string("video")), in.integer("frame_load_cap"))};
  }
};
WAN_REGISTER_NODE(LoadVideo);

}  // namespace wan::nodes
