// LoadVAE: the Wan2.1 causal 3-D VAE.
#include <spdlog/spdlog.h>

#include "models/vae/wan_vae.h"
#include "nodes/node_support.h"
#include "nodes/socket_types.h"
#include "plan/plan_context.h"
#include "plan/weights_plan.h"

namespace wan::nodes {

class LoadVae : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("LoadVAE", kCategoryLoaders)
        .display_name("Load Wan VAE")
        .description("Loads Wan2.1_VAE.pth or ComfyUI's wan_2.1_vae.safetensors.")
        .input(graph::ModelFile("model_name", "vae"))
        .input(placement_input("gpu"))
        .input(graph::Choice("dtype", {"fp32", "bf16", "fp16"}).default_to("fp32"))
        .output(VaeSocket::kType, "vae");
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    const auto path = run.model_path("vae", in.string("model_name")).string();
    auto vae = models::load_wan_vae(path, parse_dtype(in.string("dtype"), run.node_label()));
    auto socket = std::make_shared<VaeSocket>();
    socket->file = path;
    socket->model =
        run.devices().adopt(vae.ptr(), device::parse_placement(in.string("placement")), "vae");
    log_loaded(run, path, "dtype " + in.string("dtype"), socket->model);
    return {socket};
  }

  bool plan(const graph::Values& in, plan::PlanContext& plan) const override {
    auto vae = plan::vae_weights(plan, in.string("model_name"),
                                 parse_dtype(in.string("dtype"), plan.node_label()));
    plan::PlannedValue out;
    out.model = plan.adopt(std::move(vae), "vae", in.string("placement"));
    plan.set_output(0, out);
    return true;
  }
};

void register_load_vae(graph::NodeRegistry& registry) { registry.add<LoadVae>(); }

}  // namespace wan::nodes
