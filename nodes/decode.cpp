// Decode: VAE decode of a latent into frames (ComfyUI IMAGE, on the CPU).
#include "core/error.h"
#include "image/image_ops.h"
#include "nodes/node_support.h"
#include "nodes/socket_types.h"
#include "nodes/vae_tiling_inputs.h"
#include "plan/activation_estimates.h"
#include "plan/plan_context.h"
#include "plan/vae_tile_plan.h"

namespace wan::nodes {

class Decode : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    graph::NodeSchema schema("Decode", kCategorySampling);
    schema.display_name("Wan Decode")
        .description("Decodes a latent one latent frame at a time into IMAGE frames in [0, 1]; "
                     "with tile_size, in overlapping spatial tiles.")
        .input(socket<VaeSocket>("vae"))
        .input(graph::Socket("latent", kLatentType));
    return add_vae_tiling_inputs(schema).output("IMAGE", "images");
  }

  void validate(const graph::NodeView& node, graph::ValidationIssues& issues) const override {
    check_vae_tiling_inputs(node, issues);
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    const auto vae_socket = in.object<VaeSocket>("vae");
    const auto& latent = in.tensor("latent");
    if (latent.dim() != 4)
      throw ValidationError(run.node_label() + " input 'latent': expected [16, T, H/8, W/8]");
    auto options = vae_run_options_of(in, run.node_label());
    at::NoGradGuard no_grad;
    at::Tensor video;  // [3, F, H, W] in CPU memory
    {
      auto lease = run.devices().lease(vae_socket->model, run.node_label());
      models::WanVae vae(vae_socket->model.module_as<models::WanVaeImpl>());
      options.progress([&](int done, int total) { run.report_step(done, total); });
      video = run.devices().to_cpu(vae->decode(run.devices().to_compute(latent), options));
    }
    // Converted after the lease ends, so the IMAGE is CPU memory (ComfyUI's convention).
    return {image::from_wan_image(video).contiguous()};  // [F, H, W, 3]
  }

  bool plan(const graph::Values& in, plan::PlanContext& plan) const override {
    auto& vae = plan.model("vae");
    const plan::PlannedValue* latent = plan.input("latent");
    const auto& s = latent->shape;
    // A tile_size fed by a link is unknown here: planned untiled, the upper bound.
    const int64_t tile = in.has("tile_size") ? in.integer("tile_size") / models::kVaeStrideSpace : 0;
    const int64_t act = plan::vae_tiled_decode_activation_bytes(
        s.latent_frames(), s.height, s.width, tile, vae.vae.dim * vae.vae.dim_mult[0],
        vae.act_bytes);
    if (!plan.lease(vae, act, "VAE decode activations", latent->cpu_bytes, 1,
                    plan::latent_positions(s)))
      return true;
    // The IMAGE [F, H, W, 3] float32 is made in CPU memory after the lease: [3, F, H, W] copied
    // out, then permuted.
    plan::PlannedValue images;
    images.shape = s;
    images.cpu_bytes = s.frames * s.height * s.width * 3 * 4;
    plan.hold(images, 2 * images.cpu_bytes);
    plan.set_output(0, images);
    return true;
  }
};

void register_decode(graph::NodeRegistry& registry) { registry.add<Decode>(); }

}  // namespace wan::nodes
