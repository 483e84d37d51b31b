// Sigma / timestep schedules of the flow-matching samplers, computed with the same float64
// operations (and therefore the same roundings) as the official numpy code.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

namespace wan::samplers {

// Wan trains with 1000 discrete timesteps; timestep = trunc(sigma * 1000).
constexpr int64_t kNumTrainTimesteps = 1000;

// The schedule one sampler walks: timesteps int64 [N] (what the DiT is given) and sigmas
// float32 [N + 1] whose last entry is 0 (the sample then is the prediction of x0).
struct FlowSchedule {
  at::Tensor timesteps;
  at::Tensor sigmas;
};

// numpy.linspace(start, stop, num) (endpoint included) as float64 [num], bit for bit:
// i * ((stop - start) / (num - 1)) + start, with the last entry set to stop.
at::Tensor numpy_linspace(double start, double stop, int64_t num);

// The flow shift applied to float64 sigmas: shift * s / (1 + (shift - 1) * s).
at::Tensor shift_sigmas(const at::Tensor& sigmas, double shift);

// Half log-SNR of a flow sigma, lambda = log(alpha) - log(sigma) with alpha = 1 - sigma, on a
// 0-dim float32 tensor and in the official order (two logs, then the difference), so sigma = 0
// gives +inf and sigma = 1 gives -inf exactly as the reference does.
at::Tensor flow_lambda(const at::Tensor& sigma);

// FlowUniPCMultistepScheduler(num_train_timesteps=1000, shift=1).set_timesteps(steps, shift):
// N + 1 points from sigma_max = float32(0.999) down to 0, the last dropped, then shifted.
// The Euler sampler walks the same schedule.
FlowSchedule unipc_schedule(int64_t steps, double shift);

// get_sampling_sigmas(steps, shift) of wan/utils/fm_solvers.py: linspace(1, 0, steps + 1)[:steps]
// shifted, float64 [steps]. Note it starts at sigma 1 (timestep 1000), unlike unipc_schedule.
at::Tensor sampling_sigmas(int64_t steps, double shift);

// FlowDPMSolverMultistepScheduler(shift=1) fed sampling_sigmas(steps, shift) through
// retrieve_timesteps(sigmas=...), as wan/text2video.py does for 'dpm++'.
FlowSchedule dpmpp_schedule(int64_t steps, double shift);

}  // namespace wan::samplers
