// LoadImage (ComfyUI core, nodes.py): an image from the input folder as IMAGE [F, H, W, 3] and
// MASK [F, H, W], the mask being 1 - alpha as ComfyUI gives it (0 where there is no alpha).
#include "media/image_file.h"
#include "nodes/node_support.h"

namespace wan::nodes {

class LoadImage : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("LoadImage", "image")
        .comfy_core("nodes")
        .display_name("Load Image")
        .input(graph::Choice("image", std::vector<std::string>{}).upload("image").input_file())
        .output("IMAGE", "IMAGE")
        .output("MASK", "MASK");
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    const auto loaded = media::load_image(input_path(run, in.string("image")));
    return {loaded.image, loaded.mask};
  }
};
WAN_REGISTER_NODE(LoadImage);

}  // namespace wan::nodes
