// ImageToVideo: I2V conditioning from a start image (official WanI2V).
#include "nodes/node_support.h"
#include "nodes/socket_types.h"
#include "nodes/vae_tiling_inputs.h"
#include "nodes/video_size_inputs.h"

namespace wan::nodes {

void compute_image_conditioning(const graph::Values& in, graph::RunContext& run,
                                const at::Tensor& first, const at::Tensor& last,
                                pipeline::WanConditioning& cond);

class ImageToVideo : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    graph::NodeSchema schema("ImageToVideo", kCategoryConditioning);
    schema.display_name("Wan Image to Video")
        .description("CLIP features of the start image and its VAE latent, for an i2v DiT.")
        .input(graph::Socket("vae", "WAN_VAE"))
        .input(graph::Socket("clip_vision", "WAN_CLIP_VISION"))
        .input(graph::Socket("start_image", "IMAGE"));
    add_video_size_inputs(schema);
    return add_vae_tiling_inputs(schema).output("WAN_COND", "cond");
  }

  void validate(const graph::NodeView& node, graph::ValidationIssues& issues) const override {
    check_vae_tiling_inputs(node, issues);
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    const auto shape = video_shape_of(in);
    pipeline::check_video_shape(shape, run.node_label());
    const auto image = first_frame_as_wan_image(in.tensor("start_image"), run.node_label());
    auto socket = std::make_shared<CondSocket>();
    socket->cond.kind = pipeline::ConditioningKind::kImageToVideo;
    socket->cond.shape = shape;
    compute_image_conditioning(in, run, image, at::Tensor(), socket->cond);
    return {socket};
  }
};
WAN_REGISTER_NODE(ImageToVideo);

// Shared with FirstLastFrameToVideo: CLIP, then the VAE, each on the device only while it computes.
void compute_image_conditioning(const graph::Values& in, graph::RunContext& run,
                                const at::Tensor& first, const at::Tensor& last,
                                pipeline::WanConditioning& cond) {
  at::NoGradGuard no_grad;
  {
    const auto clip_socket = in.object<ClipVisionSocket>("clip_vision");
    auto lease = run.devices().lease(clip_socket->model, run.node_label());
    models::ClipVision clip(clip_socket->model.module_as<models::ClipVisionImpl>());
    cond.clip_features = run.devices().to_cpu(
        pipeline::conditioning_clip_features(clip, first, last, lease.device()));
  }
  const auto vae_socket = in.object<VaeSocket>("vae");
  auto lease = run.devices().lease(vae_socket->model, run.node_label());
  models::WanVae vae(vae_socket->model.module_as<models::WanVaeImpl>());
  cond.y = run.devices().to_cpu(
      pipeline::conditioning_latent(vae, first, last, cond.shape, lease.device(),
                                    vae_run_options_of(in)));
}

}  // namespace wan::nodes
