// LoadCLIPVision: the open-clip ViT-H/14 vision tower I2V and FLF2V use.
#include <spdlog/spdlog.h>

#include "models/clip/clip_vision.h"
#include "nodes/node_support.h"
#include "nodes/socket_types.h"
#include "plan/plan_context.h"
#include "plan/weights_plan.h"

namespace wan::nodes {

class LoadClipVision : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("LoadCLIPVision", kCategoryLoaders)
        .display_name("Load Wan CLIP Vision")
        .description("Loads the CLIP vision tower (official .pth or ComfyUI's clip_vision_h).")
        .input(graph::ModelFile("model_name", "clip_vision"))
        .input(placement_input("offload"))
        .input(graph::Choice("dtype", {"fp16", "bf16", "fp32"}).default_to("fp16"))
        .output(ClipVisionSocket::kType, "clip_vision");
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    const auto path = run.model_path("clip_vision", in.string("model_name")).string();
    models::LoadClipVisionOptions options;
    options.dtype(parse_dtype(in.string("dtype"), run.node_label()));
    auto clip = models::load_clip_vision(path, options);
    auto socket = std::make_shared<ClipVisionSocket>();
    socket->file = path;
    socket->model = run.devices().adopt(clip.ptr(), device::parse_placement(in.string("placement")),
                                        "clip_vision");
    log_loaded(run, path, "dtype " + in.string("dtype"), socket->model);
    return {socket};
  }

  bool plan(const graph::Values& in, plan::PlanContext& plan) const override {
    auto clip = plan::clip_vision_weights(plan, in.string("model_name"),
                                          parse_dtype(in.string("dtype"), plan.node_label()));
    plan::PlannedValue out;
    out.model = plan.adopt(std::move(clip), "clip_vision", in.string("placement"));
    plan.set_output(0, out);
    return true;
  }
};

void register_load_clip_vision(graph::NodeRegistry& registry) {
  registry.add<LoadClipVision>();
}

}  // namespace wan::nodes
