// VaceToVideo: VACE conditioning from a control video, masks and reference images (official WanVace).
#include "core/error.h"
#include "image/image_ops.h"
#include "nodes/node_support.h"
#include "nodes/socket_types.h"
#include "nodes/vae_tiling_inputs.h"
#include "nodes/video_size_inputs.h"
#include "plan/activation_estimates.h"
#include "plan/plan_context.h"

namespace wan::nodes {

class VaceToVideo : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    graph::NodeSchema schema("VaceToVideo", kCategoryConditioning);
    schema.display_name("Wan VACE to Video")
        .description("Encodes the control video (split by the masks) and the reference images for "
                     "a vace DiT.")
        .input(socket<VaeSocket>("vae"));
    add_video_size_inputs(schema)
        .input(graph::Float("strength").default_to(1.0).min(0.0).max(10.0).step(0.01)
                   .tooltip("vace_context_scale: how strongly the hints steer the DiT"))
        .input(graph::Socket("control_video", "IMAGE").optional())
        .input(graph::Socket("control_masks", "MASK").optional()
                   .tooltip("> 0.5 marks the area to generate"))
        .input(graph::Socket("reference_image", "IMAGE").optional())
        .input(graph::Socket("reference_image_2", "IMAGE").optional())
        .input(graph::Socket("reference_image_3", "IMAGE").optional());
    return add_vae_tiling_inputs(schema).output(CondSocket::kType, "cond");
  }

  void validate(const graph::NodeView& node, graph::ValidationIssues& issues) const override {
    check_vae_tiling_inputs(node, issues);
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    const auto shape = video_shape_of(in);
    pipeline::check_video_shape(shape, run.node_label());
    pipeline::VaceInputs inputs;
    if (in.has("control_video")) {
      const auto& video = in.tensor("control_video");  // IMAGE [F, H, W, 3]
      if (video.dim() != 4 || video.size(3) != 3)
        throw ValidationError(run.node_label() + " input 'control_video': expected IMAGE [F, H, W, 3]");
      inputs.control_video = image::to_wan_image(video.to(at::kFloat)).permute({1, 0, 2, 3});
    }
    if (in.has("control_masks")) inputs.control_masks = in.tensor("control_masks").to(at::kFloat);
    for (const char* name : {"reference_image", "reference_image_2", "reference_image_3"})
      if (in.has(name))
        inputs.reference_images.push_back(first_frame_as_wan_image(in.tensor(name), run.node_label()));

    const auto vae_socket = in.object<VaeSocket>("vae");
    const auto options = vae_run_options_of(in, run.node_label());
    auto socket = std::make_shared<CondSocket>();
    {
      at::NoGradGuard no_grad;
      auto lease = run.devices().lease(vae_socket->model, run.node_label());
      models::WanVae vae(vae_socket->model.module_as<models::WanVaeImpl>());
      socket->cond = pipeline::vace_to_video(vae, inputs, shape, in.number("strength"),
                                             lease.device(), options);
      socket->cond.vace_context = run.devices().to_cpu(socket->cond.vace_context);
    }
    return {socket};
  }

  bool plan(const graph::Values& in, plan::PlanContext& plan) const override {
    const auto shape = video_shape_of(in);
    auto& vae = plan.model("vae");
    const int64_t video = 3 * shape.frames * shape.height * shape.width * 4;
    const int64_t latent = plan::latent_bytes(shape);
    // In CPU memory meanwhile: the control video in [-1, 1], its binarised masks and the masked
    // part with its temporaries: 24 bytes per video pixel (measured exactly on the 64x64x9
    // fixture, tests/plan/shipped_workflows_plan_test.cpp).
    plan.hold(plan::PlannedValue{}, 24 * shape.frames * shape.height * shape.width);
    // The inactive and the reactive part of the control video are encoded one after the
    // other; the first result is held meanwhile.
    const int64_t act = plan::vae_encode_activation_bytes(
        vae, shape, in.has("tile_size") ? in.integer("tile_size") : 0);
    if (!plan.lease(vae, act + latent, "VAE encode activations", video, 2,
                    plan::latent_positions(shape)))
      return true;
    // The float32 context in CPU memory: 96 channels (inactive and reactive latents, 64 mask
    // channels) over the latent frames plus one frame per reference image.
    int64_t references = 0;
    for (const char* name : {"reference_image", "reference_image_2", "reference_image_3"})
      references += plan.input(name) ? 1 : 0;
    const int64_t latent_frame = latent / shape.latent_frames();
    plan::PlannedValue cond;
    cond.shape = shape;
    cond.reference_frames = references;
    cond.cpu_bytes = 96 * (latent + references * latent_frame) / 16;
    plan.hold(cond);
    plan.set_output(0, cond);
    return true;
  }
};

void register_vace_to_video(graph::NodeRegistry& registry) { registry.add<VaceToVideo>(); }

}  // namespace wan::nodes
