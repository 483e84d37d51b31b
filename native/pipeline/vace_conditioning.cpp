// VACE conditioning (official wan/vace.py: prepare_source, vace_encode_frames, vace_encode_masks).
#include <ATen/ATen.h>

#include "core/error.h"
#include "pipeline/conditioning.h"

namespace wan::pipeline {
namespace {

// [F, H, W] mask -> [64, T, h, w]: each 8x8 pixel block becomes 64 channels, frames resampled to
// the latent frame count with nearest-exact (vace_encode_masks).
at::Tensor encode_masks(const at::Tensor& masks, const VideoShape& shape) {
  const int64_t depth = masks.size(0);
  const int64_t h = shape.latent_height(), w = shape.latent_width();
  auto m = masks.view({depth, h, kVaeStrideSpace, w, kVaeStrideSpace})
               .permute({2, 4, 0, 1, 3})
               .reshape({kVaeStrideSpace * kVaeStrideSpace, depth, h, w});
  const int64_t new_depth = (depth + 3) / kVaeStrideTime;
  return at::_upsample_nearest_exact3d(m.unsqueeze(0), {new_depth, h, w}).squeeze(0);
}

}  // namespace

at::Tensor letterbox_reference(const at::Tensor& image, int64_t height, int64_t width) {
  const int64_t ref_h = image.size(1), ref_w = image.size(2);
  if (ref_h == height && ref_w == width) return image.unsqueeze(1).to(at::kFloat);
  auto canvas = at::ones({3, 1, height, width});  // white in [-1, 1]
  const double scale = std::min(static_cast<double>(height) / ref_h, static_cast<double>(width) / ref_w);
  const auto new_h = static_cast<int64_t>(ref_h * scale);
  const auto new_w = static_cast<int64_t>(ref_w * scale);
  auto resized = at::upsample_bilinear2d(image.to(at::kFloat).unsqueeze(0), {new_h, new_w},
                                         /*align_corners=*/false)
                     .squeeze(0);
  const int64_t top = (height - new_h) / 2, left = (width - new_w) / 2;
  canvas.select(1, 0).narrow(1, top, new_h).narrow(2, left, new_w).copy_(resized);
  return canvas;
}

WanConditioning vace_to_video(models::WanVae& vae, const VaceInputs& inputs,
                              const VideoShape& shape, double strength, at::Device device,
                              const models::VaeRunOptions& vae_options) {
  check_video_shape(shape, "VaceToVideo");
  const std::vector<int64_t> video_size{3, shape.frames, shape.height, shape.width};
  at::Tensor video = inputs.control_video.defined() ? inputs.control_video.to(at::kFloat)
                                                    : at::zeros(video_size);
  if (video.sizes().vec() != video_size)
    throw ValidationError("VaceToVideo input 'control_video': has " +
                          std::to_string(video.size(1)) + " frames of " +
                          std::to_string(video.size(3)) + "x" + std::to_string(video.size(2)) +
                          ", the node asks for " + std::to_string(shape.frames) + " frames of " +
                          std::to_string(shape.width) + "x" + std::to_string(shape.height));
  at::Tensor masks = inputs.control_masks.defined()
                         ? inputs.control_masks.to(at::kFloat)
                         : at::ones({shape.frames, shape.height, shape.width});
  if (masks.dim() != 3 || masks.size(0) != shape.frames || masks.size(1) != shape.height ||
      masks.size(2) != shape.width)
    throw ValidationError("VaceToVideo input 'control_masks': expected " +
                          std::to_string(shape.frames) + " masks of " + std::to_string(shape.width) +
                          "x" + std::to_string(shape.height));

  // Binarised at 0.5: the area to keep (inactive) and the area to generate (reactive).
  const auto m = (masks > 0.5).to(at::kFloat).unsqueeze(0);
  auto inactive = vae->encode((video * (1 - m)).to(device), vae_options).to(at::kFloat);
  auto reactive = vae->encode((video * m).to(device), vae_options).to(at::kFloat);
  auto frames_latent = at::cat({inactive, reactive}, 0);  // [32, T, h, w]
  inactive = reactive = at::Tensor();

  std::vector<at::Tensor> latents;
  for (const auto& ref : inputs.reference_images) {
    if (!ref.defined() || ref.dim() != 3 || ref.size(0) != 3)
      throw ValidationError("VaceToVideo reference image: expected one RGB image [3, H, W]");
    auto ref_latent =
        vae->encode(letterbox_reference(ref, shape.height, shape.width).to(device), vae_options)
            .to(at::kFloat);
    latents.push_back(at::cat({ref_latent, at::zeros_like(ref_latent)}, 0));
  }
  const int64_t refs = static_cast<int64_t>(latents.size());
  latents.push_back(frames_latent);
  auto z = at::cat(latents, 1);

  auto mask_latent = encode_masks(masks, shape).to(device);
  if (refs > 0) {
    auto pad = at::zeros({mask_latent.size(0), refs, mask_latent.size(2), mask_latent.size(3)},
                         mask_latent.options());
    mask_latent = at::cat({pad, mask_latent}, 1);
  }

  WanConditioning cond;
  cond.kind = ConditioningKind::kVace;
  cond.shape = shape;
  cond.vace_context = at::cat({z, mask_latent}, 0);  // [96, R + T, h, w]
  cond.vace_strength = strength;
  cond.reference_frames = refs;
  return cond;
}

}  // namespace wan::pipeline
