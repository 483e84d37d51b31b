// ImageToMask (ComfyUI core, comfy_extras/nodes_mask.py): one channel of an IMAGE as a MASK.
#include "media/image_file.h"
#include "nodes/node_support.h"

namespace wan::nodes {

class ImageToMask : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("ImageToMask", "mask")
        .comfy_core("comfy_extras.nodes_mask")
        .display_name("Convert Image to Mask")
        .input(graph::Socket("image", "IMAGE"))
        .input(graph::Choice("channel", {"red", "green", "blue", "alpha"}))
        .output("MASK", "MASK");
  }

  graph::Values execute(const graph::Values& in, graph::RunContext&) override {
    return {media::image_to_mask(in.tensor("image"), in.string("channel"))};
  }
};
WAN_REGISTER_NODE(ImageToMask);

}  // namespace wan::nodes
