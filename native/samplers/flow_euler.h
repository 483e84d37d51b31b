// First-order flow Euler on the unipc schedule.
#pragma once
#include "samplers/flow_sampler.h"

namespace wan::samplers {

// x_{i+1} = x_i + (sigma_{i+1} - sigma_i) * v_i on the schedule of FlowUniPcSampler (same
// timesteps, same sigmas), the update of diffusers' FlowMatchEulerDiscreteScheduler. The official
// Wan2.1 code has no Euler option; sharing the unipc schedule makes it a drop-in comparison.
class FlowEulerSampler final : public FlowSampler {
 public:
  FlowEulerSampler(int64_t steps, double shift);
  std::string solver() const override { return kSolverEuler; }
  at::Tensor step(const at::Tensor& model_output, int64_t step_index,
                  const at::Tensor& sample) override;
};

}  // namespace wan::samplers
