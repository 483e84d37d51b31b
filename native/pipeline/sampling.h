// The denoising loop shared by T2V, I2V, FLF2V and VACE (official WanT2V/WanI2V/... .generate).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <string>

#include "models/dit/wan_dit.h"
#include "pipeline/conditioning.h"
#include "pipeline/video_shape.h"
#include "samplers/flow_sampler.h"

namespace wan::pipeline {

struct SampleSettings {
  int64_t seed = 0;
  int64_t steps = 50;
  double cfg = 5.0;
  double shift = 5.0;
  std::string solver = samplers::kDefaultSolver;
};

// One step's tensors, for parity checks against the official trajectories.
struct StepRecord {
  int64_t index = 0;
  int64_t timestep = 0;
  at::Tensor latent_in, noise_pred_cond, noise_pred_uncond, noise_pred, latent_out;
};

struct SampleCallbacks {
  std::function<void(int64_t done, int64_t total)> progress;  // after each step
  std::function<bool()> cancelled;  // checked before each step; true -> wan::Cancelled
  std::function<void(const StepRecord&)> trace;  // optional, for tests
  std::function<void(const at::Tensor&)> noise;   // optional: the initial noise
  // Optional, after each step: the step's data prediction x0 = x_t - sigma_t * v [16, T, h, w]
  // (VACE reference frames trimmed), for latent previews; computed only when set.
  std::function<void(const at::Tensor& x0)> preview;
};

// Draws the initial noise on the CPU from `seed` (same on any device), runs `steps` steps of the
// chosen flow solver with classifier-free guidance (cond first; cfg == 1 skips the unconditional
// call) and returns the latent [16, T, h, w] float32 on `device`, with VACE reference frames
// trimmed. positive/negative: T5 outputs [L, dim] of the real tokens.
at::Tensor sample_video(models::WanDit& dit, const at::Tensor& positive, const at::Tensor& negative,
                        const WanConditioning* cond, const VideoShape& shape,
                        const SampleSettings& settings, const SampleCallbacks& callbacks,
                        at::Device device);

}  // namespace wan::pipeline
