// Sample: the flow-matching denoising loop with classifier-free guidance.
#include <algorithm>

#include "core/error.h"
#include "nodes/node_support.h"
#include "nodes/socket_types.h"
#include "nodes/video_size_inputs.h"
#include "plan/activation_estimates.h"
#include "plan/plan_context.h"
#include "pipeline/sampling.h"
#include "samplers/flow_sampler.h"

namespace wan::nodes {

class Sample : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    graph::NodeSchema schema("Sample", kCategorySampling);
    schema.display_name("Wan Sample")
        .description("Denoises from seeded noise with the DiT; the noise is drawn on the CPU, so "
                     "a seed gives the same video on any device.")
        .input(socket<DitSocket>("dit"))
        .input(socket<TextSocket>("positive"))
        .input(socket<TextSocket>("negative"))
        .input(socket<CondSocket>("cond").optional()
                   .tooltip("I2V/FLF2V/VACE conditioning; its width/height/frames must match"));
    add_video_size_inputs(schema)
        .input(graph::Int("seed").default_to(0).min(0).max(int64_t{0x7fffffffffffffff})
                   .control_after_generate())
        .input(graph::Int("steps").default_to(50).min(1).max(1000))
        .input(graph::Float("cfg").default_to(5.0).min(0.0).max(100.0).step(0.1))
        .input(graph::Float("shift").default_to(5.0).min(0.0).max(100.0).step(0.1))
        .input(graph::Choice("solver", samplers::flow_solver_names())
                   .default_to(samplers::kDefaultSolver));
    return schema.output(kLatentType, "latent");
  }

  // The conditioning's video size wins; a Sample whose own size disagrees is a graph error.
  void validate(const graph::NodeView& node, graph::ValidationIssues& issues) const override {
    const auto [cond_node, index] = node.upstream("cond");
    if (!cond_node) return;
    for (const char* input : {"width", "height", "frames"}) {
      const auto& mine = node.literals();
      const auto& theirs = cond_node->literals();
      if (!mine.has(input) || !theirs.has(input)) continue;
      if (mine.integer(input) != theirs.integer(input))
        issues.add(input, "Sample input '" + std::string(input) + "' is " +
                              std::to_string(mine.integer(input)) + " but its cond (" +
                              cond_node->class_type() + ", node " + cond_node->id() + ") has " +
                              std::to_string(theirs.integer(input)) + "; set both to the same value");
    }
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    const auto dit_socket = in.object<DitSocket>("dit");
    const auto positive = in.object<TextSocket>("positive");
    const auto negative = in.object<TextSocket>("negative");
    std::shared_ptr<const CondSocket> cond;
    if (in.has("cond")) cond = in.object<CondSocket>("cond");
    const auto shape = cond ? cond->cond.shape : video_shape_of(in);
    pipeline::check_video_shape(shape, run.node_label());

    pipeline::SampleSettings settings;
    settings.seed = in.integer("seed");
    settings.steps = in.integer("steps");
    settings.cfg = in.number("cfg");
    settings.shift = in.number("shift");
    settings.solver = in.string("solver");
    pipeline::SampleCallbacks callbacks;
    callbacks.progress = [&](int64_t done, int64_t total) { run.report_step(done, total); };
    if (run.on_latent) callbacks.preview = [&](const at::Tensor& x0) { run.report_latent(x0); };
    callbacks.cancelled = [&] {
      run.check_cancelled();
      return false;
    };

    at::NoGradGuard no_grad;
    auto lease = run.devices().lease(dit_socket->model, run.node_label());
    models::WanDit dit(dit_socket->model.module_as<models::WanDitImpl>());
    auto latent = pipeline::sample_video(dit, positive->embeddings, negative->embeddings,
                                         cond ? &cond->cond : nullptr, shape, settings, callbacks,
                                         lease.device());
    return {run.devices().to_cpu(latent)};
  }

  bool plan(const graph::Values& in, plan::PlanContext& plan) const override {
    auto& dit = plan.model("dit");
    const plan::PlannedValue* cond = plan.input("cond");
    const auto shape = cond ? cond->shape : video_shape_of(in);
    // What the DiT denoises: with VACE reference images, one latent frame more per image (four
    // video frames each), trimmed from the output.
    auto sampled = shape;
    if (cond) sampled.frames += 4 * cond->reference_frames;
    // The conditioning moves over to where the DiT computes.
    const int64_t cond_on_device = cond && plan.computes_on_device(dit) ? cond->cpu_bytes : 0;
    // One DiT call per step, two with classifier-free guidance (cfg 1 skips the negative).
    const int64_t passes = in.integer("steps") * (in.number("cfg") == 1.0 ? 1 : 2);
    // The larger of a DiT call and the solver's update between calls.
    const int64_t steps = in.integer("steps");
    if (!plan.lease(dit,
                    std::max(plan::dit_activations(dit, sampled, steps),
                             plan::solver_step_bytes(sampled, steps)),
                    "DiT activations at " + std::to_string(plan::dit_tokens(dit.dit, sampled)) +
                        " tokens",
                    cond_on_device, passes, plan::dit_tokens(dit.dit, sampled)))
      return true;
    plan.park(dit, passes * plan::vace_parked_bytes(dit, sampled),
              plan::vace_parked_cpu_bytes(dit, sampled));
    plan::PlannedValue latent;  // back in CPU memory
    latent.shape = shape;
    latent.cpu_bytes = plan::latent_bytes(shape);
    plan.hold(latent);
    plan.set_output(0, latent);
    return true;
  }
};

void register_sample(graph::NodeRegistry& registry) { registry.add<Sample>(); }

}  // namespace wan::nodes
