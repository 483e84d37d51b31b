// What the I2V, FLF2V and VACE conditioning nodes hand to Sample: the DiT's extra inputs and the
// video shape they were built for.
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "models/clip/clip_vision.h"
#include "models/vae/wan_vae.h"
#include "pipeline/video_shape.h"

namespace wan::pipeline {

enum class ConditioningKind { kImageToVideo, kFirstLastFrame, kVace };
const char* conditioning_kind_name(ConditioningKind kind);

struct WanConditioning {
  ConditioningKind kind = ConditioningKind::kImageToVideo;
  VideoShape shape;
  at::Tensor clip_features;  // i2v [1, 257, C]; flf2v [2, 257, C] (first, last)
  at::Tensor y;              // i2v / flf2v: [4 mask + 16 latent, T, h, w]
  at::Tensor vace_context;   // vace: [96, R + T, h, w] (R reference frames first)
  double vace_strength = 1.0;
  int64_t reference_frames = 0;  // R: latent frames of reference images, trimmed after sampling

  // Shape of the initial noise: [16, R + T, h, w].
  std::vector<int64_t> noise_shape() const;
  // Moves every tensor to `device` (CPU <-> compute device crossings happen only here).
  WanConditioning to(at::Device device) const;
};

// The 4-channel mask of which latent frames carry given pixels, as the official pipelines build
// it: frame 0 (and, with `last`, frame F-1) set, packed 4 frames per latent frame -> [4, T, h, w].
at::Tensor frame_mask(const VideoShape& shape, bool last);

// The two halves of I2V / FLF2V conditioning (official WanI2V / WanFLF2V .generate), so that a
// caller can give each model the device only while it computes (the official code offloads CLIP
// before the VAE encode). Images: [3, H, W] in [-1, 1]; `last_image` undefined for I2V.
// CLIP features of the given image(s) at their own size: [1 or 2, 257, C] float32.
at::Tensor conditioning_clip_features(models::ClipVision& clip, const at::Tensor& first_image,
                                      const at::Tensor& last_image, at::Device device);
// `y` = frame mask ++ VAE encoding of the frames resized to the video size: [20, T, h, w].
// `vae_options`: the encode's spatial tiling (untiled by default).
at::Tensor conditioning_latent(models::WanVae& vae, const at::Tensor& first_image,
                               const at::Tensor& last_image, const VideoShape& shape,
                               at::Device device, const models::VaeRunOptions& vae_options = {});
// The last frame as the official FLF2V prepares it (centre crop when the sizes differ).
at::Tensor prepare_last_frame(const at::Tensor& first_image, const at::Tensor& last_image);

struct VaceInputs {
  at::Tensor control_video;  // [3, F, H, W] in [-1, 1], or undefined (all zeros)
  at::Tensor control_masks;  // [F, H, W] in [0, 1] (> 0.5 = generate), or undefined (all ones)
  std::vector<at::Tensor> reference_images;  // each [3, h, w] in [-1, 1]
};

// Official WanVace: prepare_source (reference images letterboxed on white), vace_encode_frames,
// vace_encode_masks, vace_latent. `vae_options`: the encodes' spatial tiling.
WanConditioning vace_to_video(models::WanVae& vae, const VaceInputs& inputs,
                              const VideoShape& shape, double strength, at::Device device,
                              const models::VaeRunOptions& vae_options = {});

// Reference image letterboxed onto a white canvas of height x width, as prepare_source does:
// bilinear resize by the smaller scale, centred. [3, h, w] -> [3, 1, height, width].
at::Tensor letterbox_reference(const at::Tensor& image, int64_t height, int64_t width);

}  // namespace wan::pipeline
