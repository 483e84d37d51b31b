// SaveVideo: animated WebP, H.264 MP4 or PNG frames, with the workflow embedded as ComfyUI does.
#include "media/video_writer.h"
#include "nodes/node_support.h"

namespace wan::nodes {

class SaveVideo : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("SaveVideo", kCategoryOutput)
        .display_name("Wan Save Video")
        .output_node()
        .input(graph::Socket("images", "IMAGE"))
        .input(graph::String("filename_prefix").default_to("wan"))
        .input(graph::Choice("format", {"webp", "mp4", "png"}).default_to("webp"))
        .input(graph::Float("fps").default_to(16.0).min(1.0).max(120.0).step(1.0));
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    media::save_video(
        run.output_dir.string(), in.string("filename_prefix"),
        media::parse_video_format(in.string("format")), in.tensor("images"), in.number("fps"),
        output_metadata(run), [&](int64_t done, int64_t total) { run.report_step(done, total); });
    return {};
  }
};
WAN_REGISTER_NODE(SaveVideo);

}  // namespace wan::nodes
