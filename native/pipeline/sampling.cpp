#include "pipeline/sampling.h"

#include <spdlog/spdlog.h>

#include <cmath>

#include "core/error.h"
#include "samplers/flow_sampler.h"
#include "samplers/guidance.h"
#include "samplers/initial_noise.h"

namespace wan::pipeline {

at::Tensor sample_video(models::WanDit& dit, const at::Tensor& positive, const at::Tensor& negative,
                        const WanConditioning* cond, const VideoShape& shape,
                        const SampleSettings& settings, const SampleCallbacks& callbacks,
                        at::Device device) {
  check_video_shape(shape, "Sample");
  if (cond && cond->shape != shape)
    throw ValidationError("Sample: the conditioning was built for " + std::to_string(cond->shape.width) +
                          "x" + std::to_string(cond->shape.height) + "x" +
                          std::to_string(cond->shape.frames) + ", Sample asks for " +
                          std::to_string(shape.width) + "x" + std::to_string(shape.height) + "x" +
                          std::to_string(shape.frames));
  const auto& config = dit->config();
  const bool wants_image = config.has_image_input();
  const bool wants_vace = config.variant == models::WanDitVariant::kVace;
  const std::string variant = models::to_string(config.variant);
  const bool has_image = cond && cond->kind != ConditioningKind::kVace;
  const bool has_vace = cond && cond->kind == ConditioningKind::kVace;
  if (wants_image != has_image || wants_vace != has_vace)
    throw ValidationError("Sample input 'cond': a " + variant + " DiT needs " +
                          (wants_image ? "an ImageToVideo or FirstLastFrameToVideo conditioning"
                           : wants_vace ? "a VaceToVideo conditioning"
                                        : "no conditioning") +
                          (cond ? std::string(", got ") + conditioning_kind_name(cond->kind)
                                : std::string(", got none")));

  const auto noise_shape = cond ? cond->noise_shape() : shape.latent_shape();
  const int64_t seq_len = shape.tokens(noise_shape[1]);
  auto sampler = samplers::make_flow_sampler(settings.solver, settings.steps, settings.shift);

  models::DitExtras extras;
  if (cond) {
    const auto on_device = cond->to(device);
    extras.clip_fea = on_device.clip_features;
    if (on_device.y.defined()) extras.y = {on_device.y};
    if (on_device.vace_context.defined()) extras.vace_context = {on_device.vace_context};
    extras.vace_context_scale = cond->vace_strength;
  }
  const std::vector<at::Tensor> context_pos{positive.to(device)};
  const std::vector<at::Tensor> context_neg{negative.to(device)};

  auto latent = samplers::initial_noise(noise_shape, settings.seed).to(device);
  if (callbacks.noise) callbacks.noise(latent);
  const int64_t steps = sampler->num_steps();
  const auto timesteps = sampler->timesteps();
  for (int64_t i = 0; i < steps; ++i) {
    if (callbacks.cancelled && callbacks.cancelled()) throw Cancelled();
    const auto t = timesteps.narrow(0, i, 1).to(device);
    auto cond_pred = dit->forward({latent}, t, context_pos, seq_len, extras)[0];
    at::Tensor uncond_pred, pred;
    if (settings.cfg == 1.0) {
      pred = cond_pred;
    } else {
      uncond_pred = dit->forward({latent}, t, context_neg, seq_len, extras)[0];
      pred = samplers::cfg_combine(cond_pred, uncond_pred, settings.cfg);
    }
    auto next = sampler->step(pred, i, latent);
    at::Tensor x0;
    if (callbacks.preview) {
      x0 = latent - pred * sampler->sigmas()[i].item<double>();
      if (cond && cond->reference_frames > 0)
        x0 = x0.narrow(1, cond->reference_frames, x0.size(1) - cond->reference_frames);
    }
    if (callbacks.trace)
      callbacks.trace({i, timesteps[i].item<int64_t>(), latent, cond_pred, uncond_pred, pred, next});
    latent = std::move(next);
    spdlog::debug("sample step {}/{} t={}", i + 1, steps, timesteps[i].item<int64_t>());
    if (callbacks.progress) callbacks.progress(i + 1, steps);
    if (x0.defined()) callbacks.preview(x0);
  }
  if (cond && cond->reference_frames > 0)
    latent = latent.narrow(1, cond->reference_frames, latent.size(1) - cond->reference_frames)
                 .contiguous();
  return latent;
}

}  // namespace wan::pipeline
