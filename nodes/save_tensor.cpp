// SaveTensor: an IMAGE or WAN_LATENT as float32 safetensors under the key `tensor`.
#include "media/tensor_file.h"
#include "nodes/node_support.h"
#include "plan/plan_context.h"

namespace wan::nodes {

class SaveTensor : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("SaveTensor", kCategoryOutput)
        .display_name("Wan Save Tensor")
        .output_node()
        .input(graph::Socket("tensor", "IMAGE,WAN_LATENT"))
        .input(graph::String("filename_prefix").default_to("wan_tensor").output_prefix());
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    const auto saved = media::save_tensor(run.output_dir.string(), in.string("filename_prefix"),
                                          in.tensor("tensor").to(at::kFloat));
    nlohmann::json ui = ui_files({saved}, "output", false);
    run.report_ui({{"tensors", ui["images"]}});  // not an image: the frontend lists, not shows it
    return {};
  }

  // Writes a file from its input; holds nothing after.
  bool plan(const graph::Values&, plan::PlanContext&) const override { return true; }
};

void register_save_tensor(graph::NodeRegistry& registry) {
  registry.add<SaveTensor>();
}

}  // namespace wan::nodes
