// Where a model's weights live between computations; the `placement` input of every loader.
#pragma once
#include <string>
#include <vector>

namespace wan::device {

enum class Placement {
  kGpu,      // weights move to the compute device when loaded and stay there
  kCpu,      // weights stay in CPU memory and the model computes on the CPU
  kOffload,  // weights stay in CPU memory and visit the compute device only while it computes
  // like offload, except the model's blocks, which visit the compute device one at a time as
  // the model computes them, the next one brought in ahead (models that stream: the DiT)
  kStream,
};

// Not a placement but a request: the planner picks the placement for the whole graph before the
// run (plan/auto_placement.h). Loaders never see it.
inline constexpr const char* kAutoPlacement = "auto";

// "gpu", "cpu", "offload", "stream": the spellings workflows use.
const char* placement_name(Placement placement);
// Throws wan::ValidationError listing the accepted values when `text` is none of them.
Placement parse_placement(const std::string& text);
// The options of the `placement` combo, in the order the UI shows them: the concrete ones, then
// "auto".
const std::vector<std::string>& placement_choices();
// placement_choices() with "stream" before "auto": the combo of a loader whose model streams its
// blocks (LoadDiT).
const std::vector<std::string>& stream_placement_choices();
// The placements a model can have (what "auto" chooses from).
const std::vector<std::string>& concrete_placement_choices();

}  // namespace wan::device
