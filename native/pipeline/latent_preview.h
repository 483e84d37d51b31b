// What a sampler shows while it runs: the step's data prediction x0 projected to RGB with a fixed
// 16 x 3 linear map (ComfyUI's "latent2rgb" previews for Wan 2.1 latents), one picture per step at
// the latent's size (1/8 of the video's), without touching the VAE.
#pragma once
#include <ATen/ATen.h>

namespace wan::pipeline {

// x0 float [16, T, h, w] (any device) -> uint8 [h, w, 3] on the CPU: the first latent frame,
// mapped as ComfyUI's Latent2RGBPreviewer maps it (linear map plus bias, then (v + 1) / 2 clamped
// to [0, 1], times 255, truncated). Throws ValidationError for another shape.
at::Tensor latent_preview_rgb8(const at::Tensor& x0);

}  // namespace wan::pipeline
