// Classifier-free guidance as the official pipelines combine the two DiT outputs.
#pragma once
#include <ATen/ATen.h>

namespace wan::samplers {

// cond, uncond: DiT outputs with and without the prompt (same shape, dtype and device)
//   ->  uncond + guide_scale * (cond - uncond), in that order (three float32 roundings, like
//       the official noise_pred). Throws ValidationError when the inputs do not match.
at::Tensor cfg_combine(const at::Tensor& cond, const at::Tensor& uncond, double guide_scale);

}  // namespace wan::samplers
