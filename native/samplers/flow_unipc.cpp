#include "samplers/flow_unipc.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace wan::samplers {
namespace {

// Wan's FlowUniPCMultistepScheduler keeps its default solver_order.
constexpr int64_t kSolverOrder = 2;

// Scalar terms shared by the predictor and the corrector for a step from sigma_s0 to sigma_t.
// All are 0-dim float32 CPU tensors, computed with the official's operations in its order.
struct UniStepTerms {
  at::Tensor sigma_t, sigma_s0, alpha_t;
  at::Tensor lambda_s0, h, hh;
  at::Tensor h_phi_1;  // h * phi_1(h) = expm1(hh)
  at::Tensor b_h;      // B(h) of the bh2 variant: expm1(hh)
};

UniStepTerms uni_step_terms(const at::Tensor& sigma_t, const at::Tensor& sigma_s0) {
  UniStepTerms terms;
  terms.sigma_t = sigma_t;
  terms.sigma_s0 = sigma_s0;
  terms.alpha_t = 1 - sigma_t;
  terms.lambda_s0 = flow_lambda(sigma_s0);
  terms.h = flow_lambda(sigma_t) - terms.lambda_s0;
  // predict_x0: the update integrates in -h.
  terms.hh = -terms.h;
  terms.h_phi_1 = at::expm1(terms.hh);
  terms.b_h = at::expm1(terms.hh);
  return terms;
}

}  // namespace

FlowUniPcSampler::FlowUniPcSampler(int64_t steps, double shift)
    : FlowSampler(unipc_schedule(steps, shift)) {}

at::Tensor FlowUniPcSampler::step(const at::Tensor& model_output, int64_t step_index,
                                  const at::Tensor& sample) {
  begin_step(model_output, step_index, sample);
  // convert_model_output: flow prediction v -> data prediction x0 = x - sigma * v.
  const at::Tensor x0 = sample - sigma(step_index) * model_output;

  // The corrector needs the model output at the predictor's result, which is this step's input,
  // so it runs one step late; the official skips it only when there is no previous step.
  at::Tensor x = sample;
  if (step_index > 0 && last_sample_.defined()) x = correct(x0, step_index);

  x0_older_ = x0_last_;
  x0_last_ = x0;

  // lower_order_final: order min(2, steps left), and a warm-up from order 1 on the first step.
  int64_t order = std::min<int64_t>(kSolverOrder, num_steps() - step_index);
  order = std::min(order, lower_order_nums_ + 1);
  last_order_ = order;
  last_sample_ = x;
  at::Tensor prev = predict(x, step_index, order);
  lower_order_nums_ = std::min(lower_order_nums_ + 1, kSolverOrder);

  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("unipc step {}/{}: t={} sigma {:.6f} -> {:.6f}, order {}", step_index + 1,
                  num_steps(), timesteps()[step_index].item<int64_t>(),
                  sigma(step_index).item<float>(), sigma(step_index + 1).item<float>(), order);
  }
  return prev;
}

at::Tensor FlowUniPcSampler::predict(const at::Tensor& sample, int64_t step_index,
                                     int64_t order) const {
  const UniStepTerms s = uni_step_terms(sigma(step_index + 1), sigma(step_index));
  const at::Tensor& m0 = x0_last_;
  const at::Tensor x_t_ = s.sigma_t / s.sigma_s0 * sample - s.alpha_t * s.h_phi_1 * m0;
  at::Tensor x_t;
  if (order == 2) {
    const at::Tensor rk = (flow_lambda(sigma(step_index - 1)) - s.lambda_s0) / s.h;
    const at::Tensor d1 = (x0_older_ - m0) / rk;
    // Order 2 uses the fixed rho_p = 0.5 instead of solving for it.
    const at::Tensor pred_res = d1 * 0.5;
    x_t = x_t_ - s.alpha_t * s.b_h * pred_res;
  } else {
    // No history term: the official subtracts alpha_t * B(h) * 0, a 0-dim value that is NaN
    // (and poisons the sample) exactly when alpha_t * B(h) is not finite.
    x_t = x_t_ - s.alpha_t * s.b_h * 0;
  }
  return x_t.to(sample.scalar_type());
}

at::Tensor FlowUniPcSampler::correct(const at::Tensor& this_x0, int64_t step_index) const {
  // The corrector has the order of the predictor that produced this step's sample; it re-runs
  // that step from last_sample_ with the new x0 as an extra node (the sample itself is replaced).
  const int64_t order = last_order_;
  const UniStepTerms s = uni_step_terms(sigma(step_index), sigma(step_index - 1));
  const at::Tensor& m0 = x0_last_;
  const at::Tensor x_t_ = s.sigma_t / s.sigma_s0 * last_sample_ - s.alpha_t * s.h_phi_1 * m0;
  const at::Tensor d1_t = this_x0 - m0;
  at::Tensor corr;
  if (order == 1) {
    // rho_c = [0.5] for order 1.
    corr = d1_t * 0.5;
  } else {
    const at::Tensor rk = (flow_lambda(sigma(step_index - 2)) - s.lambda_s0) / s.h;
    const at::Tensor d1 = (x0_older_ - m0) / rk;
    // b_i = h_phi_i * i! / B(h) with h_phi_1 = h_phi_1 / hh - 1, h_phi_2 = h_phi_1 / hh - 1 / 2!.
    at::Tensor h_phi_k = s.h_phi_1 / s.hh - 1;
    const at::Tensor b1 = h_phi_k * 1 / s.b_h;
    h_phi_k = h_phi_k / s.hh - 0.5;
    const at::Tensor b2 = h_phi_k * 2 / s.b_h;
    // R = [rks^0; rks^1] with rks = [rk, 1]; rho_c solves R rho_c = b (float32, as the official).
    const auto f32 = at::TensorOptions().dtype(at::kFloat);
    const at::Tensor r = at::stack({at::ones({2}, f32), at::stack({rk, at::ones({}, f32)})});
    const at::Tensor rhos = at::linalg_solve(r, at::stack({b1, b2}));
    corr = rhos[0] * d1 + rhos[1] * d1_t;
  }
  return (x_t_ - s.alpha_t * s.b_h * corr).to(last_sample_.scalar_type());
}

}  // namespace wan::samplers
