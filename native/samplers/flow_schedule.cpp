#include "samplers/flow_schedule.h"

#include <cmath>
#include <string>

#include "core/error.h"

namespace wan::samplers {
namespace {

void check_schedule_args(const char* what, int64_t steps, double shift) {
  if (steps < 1) {
    throw ValidationError(std::string(what) + ": steps " + std::to_string(steps) +
                          " is not a positive count; use 1 or more sampling steps.");
  }
  if (!(shift > 0.0) || !std::isfinite(shift)) {
    throw ValidationError(std::string(what) + ": shift " + std::to_string(shift) +
                          " is not a finite positive number; Wan uses 3.0 to 17.0.");
  }
}

// Timesteps are the float64 sigmas times 1000, truncated toward zero (torch int64 cast), and the
// float32 sigmas get a final 0 (final_sigmas_type="zero").
FlowSchedule finish_schedule(const at::Tensor& sigmas64) {
  FlowSchedule schedule;
  schedule.timesteps = (sigmas64 * kNumTrainTimesteps).to(at::kLong);
  schedule.sigmas = at::cat({sigmas64, at::zeros({1}, sigmas64.options())}).to(at::kFloat);
  return schedule;
}

}  // namespace

at::Tensor numpy_linspace(double start, double stop, int64_t num) {
  TORCH_CHECK(num >= 2, "numpy_linspace needs at least two points");
  const double delta = stop - start;
  const double step = delta / static_cast<double>(num - 1);
  auto y = at::arange(num, at::TensorOptions().dtype(at::kDouble));
  if (step == 0.0) {
    // numpy's branch for a zero step: divide first, then scale by delta.
    y = y / static_cast<double>(num - 1) * delta;
  } else {
    // Two separate tensor ops keep the two roundings numpy makes (no fused multiply-add).
    y = y * step;
  }
  y = y + start;
  y.select(0, num - 1).fill_(stop);
  return y;
}

at::Tensor flow_lambda(const at::Tensor& sigma) { return at::log(1 - sigma) - at::log(sigma); }

at::Tensor shift_sigmas(const at::Tensor& sigmas, double shift) {
  // numpy evaluates (shift * s) / (1 + ((shift - 1) * s)); keep that grouping.
  return (sigmas * shift) / ((sigmas * (shift - 1.0)) + 1.0);
}

FlowSchedule unipc_schedule(int64_t steps, double shift) {
  check_schedule_args("unipc_schedule", steps, shift);
  // The scheduler's training sigmas are 1 - linspace(1, 1/1000, 1000) reversed, stored as float32;
  // set_timesteps starts from their first (largest) entry read back as a double.
  const double sigma_max =
      static_cast<double>(static_cast<float>(1.0 - 1.0 / static_cast<double>(kNumTrainTimesteps)));
  const double sigma_min = 0.0;
  auto sigmas = numpy_linspace(sigma_max, sigma_min, steps + 1).narrow(0, 0, steps);
  return finish_schedule(shift_sigmas(sigmas, shift));
}

at::Tensor sampling_sigmas(int64_t steps, double shift) {
  check_schedule_args("sampling_sigmas", steps, shift);
  auto sigmas = numpy_linspace(1.0, 0.0, steps + 1).narrow(0, 0, steps);
  return shift_sigmas(sigmas, shift);
}

FlowSchedule dpmpp_schedule(int64_t steps, double shift) {
  // set_timesteps(sigmas=...) shifts again by the scheduler's own shift, which Wan sets to 1:
  // 1 * s / (1 + 0 * s) is exactly s, so the given sigmas pass through unchanged.
  return finish_schedule(sampling_sigmas(steps, shift));
}

}  // namespace wan::samplers
