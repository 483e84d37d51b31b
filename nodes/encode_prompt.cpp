// EncodePrompt: T5 embeddings of one prompt, cut to its real tokens.
#include "nodes/node_support.h"
#include "nodes/socket_types.h"

namespace wan::nodes {

class EncodePrompt : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("EncodePrompt", kCategoryConditioning)
        .display_name("Wan Encode Prompt")
        .description("Encodes a prompt with the T5 encoder (only its real tokens are computed).")
        .input(graph::Socket("t5", "WAN_T5"))
        .input(graph::String("text").multiline().default_to(""))
        .output("WAN_TEXT", "text");
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    const auto t5 = in.object<T5Socket>("t5");
    auto socket = std::make_shared<TextSocket>();
    socket->text = in.string("text");
    {
      auto lease = run.devices().lease(t5->model, run.node_label());
      at::NoGradGuard no_grad;
      // The embeddings stay on the compute device, where Sample needs them (a cpu T5 computes
      // on the CPU and its output moves over).
      socket->embeddings = run.devices().to_compute(t5->encoder->encode(socket->text));
    }
    return {socket};
  }
};
WAN_REGISTER_NODE(EncodePrompt);

}  // namespace wan::nodes
