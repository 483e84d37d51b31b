// SaveTensor: an IMAGE or WAN_LATENT as float32 safetensors under the key `tensor`.
#include "media/video_writer.h"
#include "nodes/node_support.h"

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
};
WAN_REGISTER_NODE(SaveTensor);

}  // namespace wan::nodes
