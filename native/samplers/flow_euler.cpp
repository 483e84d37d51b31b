#include "samplers/flow_euler.h"

#include <spdlog/spdlog.h>

namespace wan::samplers {

FlowEulerSampler::FlowEulerSampler(int64_t steps, double shift)
    : FlowSampler(unipc_schedule(steps, shift)) {}

at::Tensor FlowEulerSampler::step(const at::Tensor& model_output, int64_t step_index,
                                  const at::Tensor& sample) {
  begin_step(model_output, step_index, sample);
  // The step size is taken in float32 from the float32 sigmas, as diffusers does.
  const at::Tensor dt = sigma(step_index + 1) - sigma(step_index);
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("euler step {}/{}: t={} dt {:.6f}", step_index + 1, num_steps(),
                  timesteps()[step_index].item<int64_t>(), dt.item<float>());
  }
  // Unlike diffusers (which casts to the model output's dtype) the result keeps the promoted dtype
  // of sample and model output, as the Wan solvers do: bf16 DiT outputs never demote float32
  // latents.
  const auto dtype = at::result_type(sample, model_output);
  return (sample.to(at::kFloat) + dt * model_output).to(dtype);
}

}  // namespace wan::samplers
