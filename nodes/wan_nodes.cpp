#include "nodes/wan_nodes.h"

namespace wan::nodes {

// Each defined beside the node classes it adds.
void register_load_t5(graph::NodeRegistry& registry);
void register_load_vae(graph::NodeRegistry& registry);
void register_load_dit(graph::NodeRegistry& registry);
void register_load_clip_vision(graph::NodeRegistry& registry);
void register_encode_prompt(graph::NodeRegistry& registry);
void register_image_to_video(graph::NodeRegistry& registry);
void register_first_last_frame_to_video(graph::NodeRegistry& registry);
void register_vace_to_video(graph::NodeRegistry& registry);
void register_sample(graph::NodeRegistry& registry);
void register_decode(graph::NodeRegistry& registry);
void register_load_image_frames(graph::NodeRegistry& registry);
void register_save_tensor(graph::NodeRegistry& registry);
// ComfyUI core's nodes, under their own names and schemas (nodes/core/).
void register_load_image(graph::NodeRegistry& registry);
void register_image_to_mask(graph::NodeRegistry& registry);
void register_primitive_nodes(graph::NodeRegistry& registry);
void register_save_image_nodes(graph::NodeRegistry& registry);
void register_video_nodes(graph::NodeRegistry& registry);

void register_wan_nodes(graph::NodeRegistry& registry) {
  register_load_t5(registry);
  register_load_vae(registry);
  register_load_dit(registry);
  register_load_clip_vision(registry);
  register_encode_prompt(registry);
  register_image_to_video(registry);
  register_first_last_frame_to_video(registry);
  register_vace_to_video(registry);
  register_sample(registry);
  register_decode(registry);
  register_load_image_frames(registry);
  register_save_tensor(registry);
  register_load_image(registry);
  register_image_to_mask(registry);
  register_primitive_nodes(registry);
  register_save_image_nodes(registry);
  register_video_nodes(registry);
}

const graph::NodeRegistry& wan_node_registry() {
  static const graph::NodeRegistry registry = [] {
    graph::NodeRegistry r;
    register_wan_nodes(r);
    return r;
  }();
  return registry;
}

}  // namespace wan::nodes
