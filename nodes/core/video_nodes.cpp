// ComfyUI core's video nodes (comfy_extras/nodes_video.py) over the VIDEO type: LoadVideo,
// GetVideoComponents, CreateVideo and SaveVideo. A VIDEO here is decoded frames plus their rate.
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "io/tensor_map.h"
#include "media/video_file.h"
#include "media/video_writer.h"
#include "nodes/node_support.h"
#include "plan/activation_estimates.h"
#include "plan/plan_context.h"
#include "nodes/socket_types.h"

namespace wan::nodes {

class LoadVideo : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("LoadVideo", "image/video")
        .comfy_core("comfy_extras.nodes_video")
        .display_name("Load Video")
        .input(graph::Choice("file", std::vector<std::string>{}).upload("video").input_file())
        .output(VideoSocket::kType, "VIDEO");
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    const std::string path = input_path(run, in.string("file"));
    auto video = std::make_shared<VideoSocket>();
    video->fps = media::video_frame_rate(path);
    video->frames = media::load_video(path);
    return {video};
  }

  // The decoded frames stay in CPU memory as the VIDEO's IMAGE, sized from the file's container
  // (hold_loaded_frames); one that declares no frame count or duration is not counted.
  bool plan(const graph::Values& in, plan::PlanContext& plan) const override {
    const auto extent = planned_image_input(plan, in.string("file"), /*frame_load_cap=*/0);
    if (extent) plan.set_output(0, hold_loaded_frames(plan, *extent));
    return true;
  }
};

class GetVideoComponents : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("GetVideoComponents", "image/video")
        .comfy_core("comfy_extras.nodes_video")
        .display_name("Get Video Components")
        .description("Extracts all components from a video: frames, audio, and framerate.")
        .input(socket<VideoSocket>("video"))
        .output("IMAGE", "images")
        .output("AUDIO", "audio")
        .output("FLOAT", "fps");
  }

  graph::Values execute(const graph::Values& in, graph::RunContext&) override {
    const auto video = in.object<VideoSocket>("video");
    return {video->frames, graph::Value(), video->fps};  // no audio is carried
  }

  // The frames are the VIDEO's own tensor, not a copy.
  bool plan(const graph::Values&, plan::PlanContext& plan) const override {
    if (const plan::PlannedValue* video = plan.input("video")) plan.set_output(0, *video);
    return true;
  }
};

class CreateVideo : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("CreateVideo", "image/video")
        .comfy_core("comfy_extras.nodes_video")
        .display_name("Create Video")
        .description("Create a video from images.")
        .input(graph::Socket("images", "IMAGE"))
        .input(graph::Float("fps").default_to(30.0).min(1.0).max(120.0).step(1.0))
        .input(graph::Socket("audio", "AUDIO").optional())
        .output(VideoSocket::kType, "VIDEO");
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    if (in.has("audio"))
      throw ValidationError(run.node_label() + " input 'audio': audio is not supported; "
                            "disconnect it to make a silent video");
    const auto& images = in.tensor("images");
    if (images.dim() != 4 || images.size(3) < 3)
      throw ValidationError(run.node_label() + " input 'images': expected an IMAGE [F, H, W, 3], got " +
                            io::format_shape(images.sizes()));
    auto video = std::make_shared<VideoSocket>();
    video->frames = images.size(3) == 3 ? images : images.narrow(3, 0, 3);
    video->fps = in.number("fps");
    return {video};
  }

  // The VIDEO holds the IMAGE's own tensor (a view when it drops an alpha channel).
  bool plan(const graph::Values&, plan::PlanContext& plan) const override {
    if (const plan::PlannedValue* images = plan.input("images")) plan.set_output(0, *images);
    return true;
  }
};

class SaveVideo : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("SaveVideo", "image/video")
        .comfy_core("comfy_extras.nodes_video")
        .display_name("Save Video")
        .description("Saves the input images to your ComfyUI output directory.")
        .output_node()
        .input(socket<VideoSocket>("video"))
        .input(graph::String("filename_prefix").default_to("video/ComfyUI").output_prefix())
        .input(graph::Choice("format", {"auto", "mp4"}).default_to("auto"))
        .input(graph::Choice("codec", {"auto", "h264"}).default_to("auto"))
        .hidden("prompt", "PROMPT")
        .hidden("extra_pnginfo", "EXTRA_PNGINFO");
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    const auto video = in.object<VideoSocket>("video");
    // "auto" is MP4 with H.264, as ComfyUI's VideoContainer/VideoCodec resolve it.
    const auto saved = media::save_video(
        run.output_dir.string(), in.string("filename_prefix"), media::VideoFormat::kMp4,
        video->frames, video->fps, output_metadata(run),
        [&](int64_t done, int64_t total) { run.report_step(done, total); });
    run.report_ui(ui_files({saved}, "output", true));
    return {};
  }

  // Writes a file from its frames' 8-bit copy; holds nothing after.
  bool plan(const graph::Values&, plan::PlanContext& plan) const override {
    if (const plan::PlannedValue* video = plan.input("video"))
      plan.hold(plan::PlannedValue{}, plan::eight_bit_copy_bytes(*video));
    return true;
  }
};

void register_video_nodes(graph::NodeRegistry& registry) {
  registry.add<LoadVideo>();
  registry.add<GetVideoComponents>();
  registry.add<CreateVideo>();
  registry.add<SaveVideo>();
}

}  // namespace wan::nodes
