// Flow UniPC (bh2, order 2, data prediction, corrector on) as Wan configures it.
#pragma once
#include "samplers/flow_sampler.h"

namespace wan::samplers {

// Mirrors FlowUniPCMultistepScheduler of the official wan/utils/fm_solvers_unipc.py constructed
// with num_train_timesteps=1000, shift=1 and then set_timesteps(steps, shift=shift); all other
// options at their defaults: solver_order=2, predict_x0, solver_type="bh2", lower_order_final,
// corrector on every step after the first (disable_corrector=[]), final sigma 0.
class FlowUniPcSampler final : public FlowSampler {
 public:
  FlowUniPcSampler(int64_t steps, double shift);
  std::string solver() const override { return kSolverUniPc; }
  at::Tensor step(const at::Tensor& model_output, int64_t step_index,
                  const at::Tensor& sample) override;

 private:
  // UniC: the corrected sample at step_index, once the data prediction this_x0 at the
  // predictor's output is known (multistep_uni_c_bh_update).
  at::Tensor correct(const at::Tensor& this_x0, int64_t step_index) const;
  // UniP: predicts the sample at sigmas()[step_index + 1] (multistep_uni_p_bh_update).
  at::Tensor predict(const at::Tensor& sample, int64_t step_index, int64_t order) const;

  // Data predictions x0 of the last two steps (model_outputs[-2], model_outputs[-1]).
  at::Tensor x0_older_, x0_last_;
  // The sample the last predictor started from (last_sample) and that predictor's order.
  at::Tensor last_sample_;
  int64_t last_order_ = 0;
  int64_t lower_order_nums_ = 0;
};

}  // namespace wan::samplers
