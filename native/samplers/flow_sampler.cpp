#include "samplers/flow_sampler.h"

#include <sstream>

#include "core/error.h"
#include "samplers/flow_dpmpp.h"
#include "samplers/flow_euler.h"
#include "samplers/flow_unipc.h"

namespace wan::samplers {
namespace {

std::string shape_string(at::IntArrayRef sizes) {
  std::ostringstream out;
  out << sizes;
  return out.str();
}

template <class Sampler>
std::unique_ptr<FlowSampler> make_sampler(int64_t steps, double shift) {
  return std::make_unique<Sampler>(steps, shift);
}

// Every solver once, in the order flow_solver_names() and error messages list them.
struct SolverEntry {
  const char* name;
  std::unique_ptr<FlowSampler> (*make)(int64_t steps, double shift);
};
constexpr SolverEntry kSolvers[] = {
    {kSolverUniPc, &make_sampler<FlowUniPcSampler>},
    {kSolverDpmpp, &make_sampler<FlowDpmppSampler>},
    {kSolverEuler, &make_sampler<FlowEulerSampler>},
};

}  // namespace

FlowSampler::FlowSampler(FlowSchedule schedule)
    : timesteps_(std::move(schedule.timesteps)), sigmas_(std::move(schedule.sigmas)) {
  TORCH_CHECK(
      timesteps_.dim() == 1 && sigmas_.dim() == 1 && sigmas_.size(0) == timesteps_.size(0) + 1,
      "FlowSampler: sigmas must have one entry more than timesteps");
}

FlowSampler::~FlowSampler() = default;

void FlowSampler::begin_step(const at::Tensor& model_output, int64_t step_index,
                             const at::Tensor& sample) {
  const std::string where = "FlowSampler(" + solver() + ") step " + std::to_string(step_index);
  if (!model_output.defined() || !sample.defined())
    throw ValidationError(where + ": model_output and sample must both be given.");
  if (step_index < 0 || step_index >= num_steps()) {
    throw ValidationError(where + ": index outside the schedule of " + std::to_string(num_steps()) +
                          " steps; use 0 to " + std::to_string(num_steps() - 1) + ".");
  }
  if (last_step_index_ >= 0 && step_index != last_step_index_ + 1) {
    throw ValidationError(where + ": came after step " + std::to_string(last_step_index_) +
                          "; steps run in order (expected " + std::to_string(last_step_index_ + 1) +
                          "), make a new sampler to start over.");
  }
  if (model_output.sizes() != sample.sizes()) {
    throw ValidationError(where + ": model_output shape " + shape_string(model_output.sizes()) +
                          " differs from sample shape " + shape_string(sample.sizes()) + ".");
  }
  if (model_output.device() != sample.device()) {
    throw ValidationError(where + ": model_output is on " + model_output.device().str() +
                          " but sample is on " + sample.device().str() +
                          "; move both to one device.");
  }
  if (!at::isFloatingType(sample.scalar_type()) ||
      !at::isFloatingType(model_output.scalar_type())) {
    throw ValidationError(where + ": sample and model_output must be floating point tensors.");
  }
  if (!sample_shape_.empty() && sample.sizes() != at::IntArrayRef(sample_shape_)) {
    throw ValidationError(where + ": sample shape " + shape_string(sample.sizes()) +
                          " differs from the earlier steps' " + shape_string(sample_shape_) +
                          "; one sampler serves one latent.");
  }
  sample_shape_ = sample.sizes().vec();
  last_step_index_ = step_index;
}

const std::vector<std::string>& flow_solver_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& entry : kSolvers) out.emplace_back(entry.name);
    return out;
  }();
  return names;
}

std::unique_ptr<FlowSampler> make_flow_sampler(const std::string& solver, int64_t steps,
                                               double shift) {
  for (const auto& entry : kSolvers) {
    if (solver == entry.name) return entry.make(steps, shift);
  }
  std::string valid;
  for (const auto& name : flow_solver_names()) valid += (valid.empty() ? "" : ", ") + name;
  throw ValidationError("make_flow_sampler: unknown solver '" + solver + "'; use one of: " + valid +
                        ".");
}

}  // namespace wan::samplers
