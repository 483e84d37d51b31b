// Flow DPM-Solver++ (multistep, order 2, midpoint) as Wan configures it for 'dpm++'.
#pragma once
#include "samplers/flow_sampler.h"

namespace wan::samplers {

// Mirrors FlowDPMSolverMultistepScheduler of the official wan/utils/fm_solvers.py constructed with
// num_train_timesteps=1000, shift=1, its schedule from get_sampling_sigmas(steps, shift) passed
// through retrieve_timesteps; defaults otherwise: algorithm_type="dpmsolver++", solver_order=2,
// solver_type="midpoint", lower_order_final, final sigma 0 (so the last step is first order).
class FlowDpmppSampler final : public FlowSampler {
 public:
  FlowDpmppSampler(int64_t steps, double shift);
  std::string solver() const override { return kSolverDpmpp; }
  at::Tensor step(const at::Tensor& model_output, int64_t step_index,
                  const at::Tensor& sample) override;

 private:
  // Data predictions x0 of the last two steps (model_outputs[-2], model_outputs[-1]).
  at::Tensor x0_older_, x0_last_;
  int64_t lower_order_nums_ = 0;
};

}  // namespace wan::samplers
