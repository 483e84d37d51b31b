// Decode: VAE decode of a latent into frames (ComfyUI IMAGE, on the CPU).
#include "core/error.h"
#include "image/image_ops.h"
#include "nodes/node_support.h"
#include "nodes/socket_types.h"
#include "nodes/vae_tiling_inputs.h"

namespace wan::nodes {

class Decode : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    graph::NodeSchema schema("Decode", kCategorySampling);
    schema.display_name("Wan Decode")
        .description("Decodes a latent one latent frame at a time into IMAGE frames in [0, 1]; "
                     "with tile_size, in overlapping spatial tiles.")
        .input(graph::Socket("vae", "WAN_VAE"))
        .input(graph::Socket("latent", "WAN_LATENT"));
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
    at::NoGradGuard no_grad;
    at::Tensor video;  // [3, F, H, W] in CPU memory
    {
      auto lease = run.devices().lease(vae_socket->model, run.node_label());
      models::WanVae vae(vae_socket->model.module_as<models::WanVaeImpl>());
      auto options = vae_run_options_of(in);
      options.progress([&](int done, int total) { run.report_step(done, total); });
      video = run.devices().to_cpu(vae->decode(run.devices().to_compute(latent), options));
    }
    // Converted after the lease ends, so the IMAGE is CPU memory (ComfyUI's convention).
    return {image::from_wan_image(video).contiguous()};  // [F, H, W, 3]
  }
};
WAN_REGISTER_NODE(Decode);

}  // namespace wan::nodes
