// The one interface every flow-matching sampler implements, and the factory the pipeline uses.
//
// A sampler walks a fixed schedule of N steps. At step i the DiT is run at timesteps()[i] on the
// current sample (the latent at sigmas()[i]); step() turns its flow prediction into the sample at
// sigmas()[i + 1]. The last sigma is 0, so the last step returns the predicted clean latent.
// Samplers are stateful (multistep history): one instance serves one sampling run.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "samplers/flow_schedule.h"

namespace wan::samplers {

// The solver names: make_flow_sampler's table, the Sample node's choice and each solver().
inline constexpr const char* kSolverUniPc = "unipc";
inline constexpr const char* kSolverDpmpp = "dpm++";
inline constexpr const char* kSolverEuler = "euler";
inline constexpr const char* kDefaultSolver = kSolverUniPc;

class FlowSampler {
 public:
  virtual ~FlowSampler();
  FlowSampler(const FlowSampler&) = delete;
  FlowSampler& operator=(const FlowSampler&) = delete;

  // The solver name as make_flow_sampler spells it (one of the kSolver* names).
  virtual std::string solver() const = 0;

  // int64 [N], on the CPU: the timestep given to the DiT at each step.
  const at::Tensor& timesteps() const { return timesteps_; }
  // float32 [N + 1], on the CPU, last entry 0: the noise level before each step and after the last.
  const at::Tensor& sigmas() const { return sigmas_; }
  int64_t num_steps() const { return timesteps_.size(0); }

  // model_output: the (guided) flow prediction at step_index, same shape, dtype and device as
  // sample  ->  the sample at sigmas()[step_index + 1], on the sample's device.
  // Steps run in order; the first call may start at any index (later ones must follow it), which
  // reproduces the official scheduler started at that timestep. Throws ValidationError otherwise.
  virtual at::Tensor step(const at::Tensor& model_output, int64_t step_index,
                          const at::Tensor& sample) = 0;

 protected:
  explicit FlowSampler(FlowSchedule schedule);

  // Checks the inputs and the step order; call first in every step().
  void begin_step(const at::Tensor& model_output, int64_t step_index, const at::Tensor& sample);
  // sigmas()[index] as a 0-dim float32 CPU tensor: the official schedulers do their scalar
  // arithmetic on such tensors, and reusing ATen's float32 kernels keeps every rounding the same.
  at::Tensor sigma(int64_t index) const { return sigmas_[index]; }

 private:
  at::Tensor timesteps_;
  at::Tensor sigmas_;
  int64_t last_step_index_ = -1;
  std::vector<int64_t> sample_shape_;
};

// The valid solver names, in the order error messages list them.
const std::vector<std::string>& flow_solver_names();

// A sampler configured exactly as the official Wan2.1 pipelines configure it:
//   "unipc": FlowUniPCMultistepScheduler(shift=1) + set_timesteps(steps, shift=shift)
//   "dpm++": FlowDPMSolverMultistepScheduler(shift=1) + retrieve_timesteps(sigmas=
//            get_sampling_sigmas(steps, shift))
//   "euler": first-order flow Euler on the unipc schedule.
// Throws ValidationError for an unknown solver (naming the valid ones), steps < 1 or shift <= 0.
std::unique_ptr<FlowSampler> make_flow_sampler(const std::string& solver, int64_t steps,
                                               double shift);

}  // namespace wan::samplers
