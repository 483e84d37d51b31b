// ImageToVideo: I2V conditioning from a start image (official WanI2V).
#include "nodes/node_support.h"
#include "nodes/socket_types.h"
#include "nodes/vae_tiling_inputs.h"
#include "nodes/video_size_inputs.h"
#include "plan/activation_estimates.h"
#include "plan/plan_context.h"

namespace wan::nodes {

void compute_image_conditioning(const graph::Values& in, graph::RunContext& run,
                                const at::Tensor& first, const at::Tensor& last,
                                pipeline::WanConditioning& cond);
void plan_image_conditioning(const graph::Values& in, plan::PlanContext& plan, int64_t images);

class ImageToVideo : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    graph::NodeSchema schema("ImageToVideo", kCategoryConditioning);
    schema.display_name("Wan Image to Video")
        .description("CLIP features of the start image and its VAE latent, for an i2v DiT.")
        .input(socket<VaeSocket>("vae"))
        .input(socket<ClipVisionSocket>("clip_vision"))
        .input(graph::Socket("start_image", "IMAGE"));
    add_video_size_inputs(schema);
    return add_vae_tiling_inputs(schema).output(CondSocket::kType, "cond");
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

  bool plan(const graph::Values& in, plan::PlanContext& plan) const override {
    plan_image_conditioning(in, plan, 1);
    return true;
  }
};

void register_image_to_video(graph::NodeRegistry& registry) { registry.add<ImageToVideo>(); }

// Shared with FirstLastFrameToVideo: CLIP, then the VAE, each on the device only while it computes.
void compute_image_conditioning(const graph::Values& in, graph::RunContext& run,
                                const at::Tensor& first, const at::Tensor& last,
                                pipeline::WanConditioning& cond) {
  const auto options = vae_run_options_of(in, run.node_label());
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
                                    options));
}

// compute_image_conditioning's memory: CLIP on `images` frames (FLF2V encodes its two as one
// batch), then the VAE encode with the video moved in; the result in CPU memory.
void plan_image_conditioning(const graph::Values& in, plan::PlanContext& plan, int64_t images) {
  const auto shape = video_shape_of(in);
  auto& clip = plan.model("clip_vision");
  if (!plan.lease(clip, images * plan::clip_activations(clip),
                  "CLIP activations at " + std::to_string(images) + " x " +
                      std::to_string(models::kClipTokensPerImage) + " tokens",
                  0, 1, images * models::kClipTokensPerImage))
    return;
  auto& vae = plan.model("vae");
  const int64_t video = 3 * shape.frames * shape.height * shape.width * 4;
  const int64_t act = plan::vae_encode_activation_bytes(
      vae, shape, in.has("tile_size") ? in.integer("tile_size") : 0);
  if (!plan.lease(vae, act, "VAE encode activations", video, 1, plan::latent_positions(shape)))
    return;
  // float32 y (4 mask + 16 latent channels) and the CLIP features [images, 257, width].
  plan::PlannedValue cond;
  cond.shape = shape;
  cond.cpu_bytes = 20 * plan::latent_bytes(shape) / 16 +
                   images * models::kClipTokensPerImage * clip.clip_width * 4;
  plan.hold(cond);
  plan.set_output(0, cond);
}

}  // namespace wan::nodes
