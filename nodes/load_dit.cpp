// LoadDiT: a Wan2.1 diffusion transformer; the variant (t2v, i2v, flf2v, vace) comes from the weights.
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "models/dit/wan_dit.h"
#include "nodes/node_support.h"
#include "nodes/socket_types.h"
#include "plan/plan_context.h"
#include "plan/weights_plan.h"

namespace wan::nodes {
namespace {

inline constexpr int64_t kAutoResidentBlocks = -1;
// What the planner tries for resident_blocks -1, most first (a count above the model's blocks
// keeps them all): 40 is the 14B models' block count, 30 the 1.3B's.
const std::vector<int64_t> kResidentBlockCounts = {40, 36, 32, 30, 28, 24, 20, 16, 12, 8, 4, 2, 1, 0};

// resident_blocks as the device manager takes it; -1 must have been resolved by the planner.
int64_t resident_blocks_of(const graph::Values& in, const std::string& where) {
  const int64_t n = in.has("resident_blocks") ? in.integer("resident_blocks") : 0;
  if (n == kAutoResidentBlocks)
    throw ValidationError(where + " input 'resident_blocks': -1 is chosen by the memory planner "
                          "for the whole prompt, and this run was not planned; set a count, or 0 "
                          "to stream every block");
  return n;
}

// vace_activations: "device" keeps them on the compute device, "cpu" parks the stream not
// computing in CPU memory (WanDitOptions::park_vace), "auto" leaves it to the planner.
inline constexpr const char* kAutoVaceActivations = "auto";

// Whether the VACE activations park in CPU memory; "auto" must have been resolved by the planner.
bool parks_vace(const graph::Values& in, const std::string& where) {
  const std::string choice = in.has("vace_activations") ? in.string("vace_activations") : "device";
  if (choice == kAutoVaceActivations)
    throw ValidationError(where + " input 'vace_activations': auto is chosen by the memory "
                          "planner for the whole prompt, and this run was not planned; set device "
                          "or cpu");
  return choice == "cpu";
}

}  // namespace

class LoadDit : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("LoadDiT", kCategoryLoaders)
        .display_name("Load Wan DiT")
        .description("Loads a Wan2.1 DiT (file, or index.json of shards); t2v/i2v/flf2v/vace is "
                     "detected from the weights.")
        .input(graph::ModelFile("model_name", "diffusion_models"))
        .input(placement_input("offload", /*streams_blocks=*/true))
        .input(graph::Choice("weight_dtype", {"as_stored", "bf16", "fp16", "fp32"})
                   .default_to("as_stored")
                   .tooltip("dtype the weights are kept in; as_stored keeps each as the file "
                            "stores it (fp8 too), cast to compute_dtype per layer as it computes"))
        .input(graph::Choice("compute_dtype", {"bf16", "fp32", "fp16"}).default_to("bf16"))
        .input(graph::Int("resident_blocks").default_to(0).min(kAutoResidentBlocks).max(1000)
                   .planner_choice(kAutoResidentBlocks, kResidentBlockCounts)
                   .planner_choice_when("placement", "stream")
                   .optional()
                   .tooltip("With placement stream: how many of the first blocks move in with the "
                            "model and stay while it samples, instead of visiting one at a time "
                            "on every step (fewer bytes moved, more device memory); -1 = as many "
                            "as fit (chosen by the planner)."))
        .input(graph::Choice("vace_activations", {"device", "cpu", kAutoVaceActivations})
                   .default_to("device")
                   .planner_choice(kAutoVaceActivations, {"device", "cpu"})
                   .optional()
                   .tooltip("VACE models: where the residual stream and the VACE chain wait while "
                            "the other computes. device keeps both on the compute device; cpu "
                            "parks the one not computing in CPU memory, so the device holds one "
                            "at a time as for t2v, for 4 x tokens x dim x 4 bytes moved per VACE "
                            "block and DiT call; auto = cpu only when device would not fit "
                            "(chosen by the planner). Other models ignore it."))
        .output(DitSocket::kType, "dit");
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    const auto path = run.model_path("diffusion_models", in.string("model_name")).string();
    const auto compute = parse_dtype(in.string("compute_dtype"), run.node_label());
    const auto& weight_choice = in.string("weight_dtype");
    const auto weights = weight_dtype_of(in, run.node_label());
    const auto placement = device::parse_placement(in.string("placement"));
    // Other placements move every block with the model: the count means nothing there.
    const int64_t resident =
        placement == device::Placement::kStream ? resident_blocks_of(in, run.node_label()) : 0;
    const bool park_vace = parks_vace(in, run.node_label());
    auto dit = models::load_wan_dit(path, weights, compute);
    const bool vace = dit->config().variant == models::WanDitVariant::kVace;
    dit->set_park_vace(park_vace && vace);
    auto socket = std::make_shared<DitSocket>();
    socket->file = path;
    socket->model = run.devices().adopt(dit.ptr(), placement, "dit", resident);
    log_loaded(run, path,
               std::string(models::to_string(dit->config().variant)) + ", " +
                   std::to_string(dit->config().num_layers) + " blocks" +
                   (resident > 0
                        ? " (" + std::to_string(std::min(resident, dit->config().num_layers)) +
                              " resident)"
                        : std::string()) +
                   (park_vace && vace ? ", VACE activations parked in CPU memory" : "") +
                   ", weights " + weight_choice + ", compute " + c10::toString(compute),
               socket->model);
    return {socket};
  }

  bool plan(const graph::Values& in, plan::PlanContext& plan) const override {
    auto dit = plan::dit_weights(plan, in.string("model_name"),
                                 weight_dtype_of(in, plan.node_label()),
                                 parse_dtype(in.string("compute_dtype"), plan.node_label()));
    // Unresolved (-1): planned as every block streaming.
    if (in.string("placement") == "stream" && in.has("resident_blocks"))
      plan::keep_blocks_resident(dit, std::max<int64_t>(0, in.integer("resident_blocks")));
    // Unresolved (auto): planned as parked, the least device memory.
    dit.park_vace = dit.dit.variant == models::WanDitVariant::kVace &&
                    in.has("vace_activations") && in.string("vace_activations") != "device";
    plan::PlannedValue out;
    out.model = plan.adopt(std::move(dit), "dit", in.string("placement"));
    plan.set_output(0, out);
    return true;
  }

 private:
  // as_stored keeps each tensor as the file stores it: no dtype.
  static std::optional<at::ScalarType> weight_dtype_of(const graph::Values& in,
                                                       const std::string& where) {
    const auto& choice = in.string("weight_dtype");
    if (choice == "as_stored") return std::nullopt;
    return parse_dtype(choice, where);
  }
};

void register_load_dit(graph::NodeRegistry& registry) { registry.add<LoadDit>(); }

}  // namespace wan::nodes
