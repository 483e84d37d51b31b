// EncodePrompt: T5 embeddings of one prompt, cut to its real tokens.
#include "nodes/node_support.h"
#include "nodes/socket_types.h"
#include "plan/activation_estimates.h"
#include "plan/plan_context.h"

namespace wan::nodes {

class EncodePrompt : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("EncodePrompt", kCategoryConditioning)
        .display_name("Wan Encode Prompt")
        .description("Encodes a prompt with the T5 encoder (only its real tokens are computed).")
        .input(socket<T5Socket>("t5"))
        .input(graph::String("text").multiline().default_to(""))
        .output(TextSocket::kType, "text");
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

  bool plan(const graph::Values& in, plan::PlanContext& plan) const override {
    auto& t5 = plan.model("t5");
    // A preset has no tokenizer at hand: the most the encoder reads.
    const int64_t tokens =
        plan.preset().empty() ? plan::t5_tokens(t5, in.string("text")) : t5.text_len;
    if (!plan.lease(t5, plan::t5_activations(t5, tokens) + t5.upcast_bytes,
                    "T5 activations at " + std::to_string(tokens) + " tokens", 0, 1, tokens))
      return true;
    // The float32 embeddings [tokens, dim] stay on the compute device (as execute()).
    const int64_t bytes = tokens * t5.t5_dim * 4;
    plan::PlannedValue text;
    text.device_bytes = plan.accelerator() ? bytes : 0;
    text.cpu_bytes = plan.accelerator() ? 0 : bytes;
    text.tokens = tokens;
    text.dim = t5.t5_dim;
    plan.hold(text);
    plan.set_output(0, text);
    return true;
  }
};

void register_encode_prompt(graph::NodeRegistry& registry) { registry.add<EncodePrompt>(); }

}  // namespace wan::nodes
