#include "samplers/flow_dpmpp.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace wan::samplers {
namespace {

// Wan's FlowDPMSolverMultistepScheduler keeps its default solver_order.
constexpr int64_t kSolverOrder = 2;

}  // namespace

FlowDpmppSampler::FlowDpmppSampler(int64_t steps, double shift)
    : FlowSampler(dpmpp_schedule(steps, shift)) {}

at::Tensor FlowDpmppSampler::step(const at::Tensor& model_output, int64_t step_index,
                                  const at::Tensor& sample) {
  begin_step(model_output, step_index, sample);
  // convert_model_output (dpmsolver++): flow prediction v -> data prediction x0 = x - sigma * v.
  const at::Tensor x0 = sample - sigma(step_index) * model_output;
  x0_older_ = x0_last_;
  x0_last_ = x0;

  // The official upcasts the sample for the update and casts the result back to the dtype of the
  // data prediction (the promoted dtype of sample and model output).
  const at::Tensor x = sample.to(at::kFloat);
  const at::Tensor sigma_t = sigma(step_index + 1);
  const at::Tensor sigma_s0 = sigma(step_index);
  const at::Tensor alpha_t = 1 - sigma_t;
  const at::Tensor lambda_s0 = flow_lambda(sigma_s0);
  const at::Tensor h = flow_lambda(sigma_t) - lambda_s0;

  // With a final sigma of 0 the last step is always first order (lower_order_final); the first
  // step has no history.
  const bool last_step = step_index == num_steps() - 1;
  const bool first_order = lower_order_nums_ < 1 || last_step;
  at::Tensor prev;
  if (first_order) {
    // dpm_solver_first_order_update (DDIM in x0 form).
    prev = (sigma_t / sigma_s0) * x - (alpha_t * (at::exp(-h) - 1.0)) * x0;
  } else {
    // multistep_dpm_solver_second_order_update, midpoint variant.
    const at::Tensor h_0 = lambda_s0 - flow_lambda(sigma(step_index - 1));
    const at::Tensor r0 = h_0 / h;
    const at::Tensor d1 = (1.0 / r0) * (x0 - x0_older_);
    prev = (sigma_t / sigma_s0) * x - (alpha_t * (at::exp(-h) - 1.0)) * x0 -
           0.5 * (alpha_t * (at::exp(-h) - 1.0)) * d1;
  }
  lower_order_nums_ = std::min(lower_order_nums_ + 1, kSolverOrder);

  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("dpm++ step {}/{}: t={} sigma {:.6f} -> {:.6f}, order {}", step_index + 1,
                  num_steps(), timesteps()[step_index].item<int64_t>(), sigma_s0.item<float>(),
                  sigma_t.item<float>(), first_order ? 1 : 2);
  }
  return prev.to(x0.scalar_type());
}

}  // namespace wan::samplers
