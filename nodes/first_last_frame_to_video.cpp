// FirstLastFrameToVideo: FLF2V conditioning from a first and a last frame (official WanFLF2V).
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

class FirstLastFrameToVideo : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    graph::NodeSchema schema("FirstLastFrameToVideo", kCategoryConditioning);
    schema.display_name("Wan First-Last Frame to Video")
        .description("CLIP features of both frames and their VAE latent, for an flf2v DiT.")
        .input(socket<VaeSocket>("vae"))
        .input(socket<ClipVisionSocket>("clip_vision"))
        .input(graph::Socket("start_image", "IMAGE"))
        .input(graph::Socket("end_image", "IMAGE"));
    add_video_size_inputs(schema);
    return add_vae_tiling_inputs(schema).output(CondSocket::kType, "cond");
  }

  void validate(const graph::NodeView& node, graph::ValidationIssues& issues) const override {
    check_vae_tiling_inputs(node, issues);
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    const auto shape = video_shape_of(in);
    pipeline::check_video_shape(shape, run.node_label());
    const auto first = first_frame_as_wan_image(in.tensor("start_image"), run.node_label());
    const auto last = pipeline::prepare_last_frame(
        first, first_frame_as_wan_image(in.tensor("end_image"), run.node_label()));
    auto socket = std::make_shared<CondSocket>();
    socket->cond.kind = pipeline::ConditioningKind::kFirstLastFrame;
    socket->cond.shape = shape;
    compute_image_conditioning(in, run, first, last, socket->cond);
    return {socket};
  }

  bool plan(const graph::Values& in, plan::PlanContext& plan) const override {
    plan_image_conditioning(in, plan, 2);
    return true;
  }
};

void register_first_last_frame_to_video(graph::NodeRegistry& registry) {
  registry.add<FirstLastFrameToVideo>();
}

}  // namespace wan::nodes
