// LoadImage: an image file as IMAGE [1, H, W, 3] and its alpha as MASK (ComfyUI's convention).
#include "media/image_file.h"
#include "nodes/node_support.h"

namespace wan::nodes {

class LoadImage : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("LoadImage", kCategoryImage)
        .display_name("Wan Load Image")
        .input(graph::String("image").default_to("").tooltip("a file path, or a name under input/"))
        .output("IMAGE", "image")
        .output("MASK", "mask");
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    const auto loaded = media::load_image(input_path(run, in.string("image")));
    return {loaded.image, loaded.mask};
  }
};
WAN_REGISTER_NODE(LoadImage);

}  // namespace wan::nodes
