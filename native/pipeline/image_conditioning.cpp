// I2V and FLF2V conditioning (official wan/image2video.py and wan/first_last_frame2video.py).
#include <cmath>

#include "core/error.h"
#include "image/image_ops.h"
#include "pipeline/conditioning.h"

namespace wan::pipeline {
namespace {

void check_image(const at::Tensor& image, const char* input) {
  if (!image.defined() || image.dim() != 3 || image.size(0) != 3)
    throw ValidationError(std::string("input '") + input + "': expected one RGB image [3, H, W]");
}

// The VAE's view of the conditioning: given frames at their positions, zeros elsewhere.
at::Tensor conditioning_video(const at::Tensor& first, const at::Tensor& last,
                              const VideoShape& shape) {
  auto video = at::zeros({3, shape.frames, shape.height, shape.width});
  video.select(1, 0).copy_(image::resize_bicubic(first, shape.height, shape.width));
  if (last.defined())
    video.select(1, shape.frames - 1).copy_(image::resize_bicubic(last, shape.height, shape.width));
  return video;
}

}  // namespace

at::Tensor frame_mask(const VideoShape& shape, bool last) {
  const int64_t h = shape.latent_height(), w = shape.latent_width();
  auto mask = at::zeros({1, shape.frames, h, w});
  mask.select(1, 0).fill_(1);
  if (last) mask.select(1, shape.frames - 1).fill_(1);
  // The first frame stands for a whole latent frame: repeat it 4 times, then pack by 4.
  mask = at::cat({mask.narrow(1, 0, 1).repeat_interleave(kVaeStrideTime, 1),
                  mask.narrow(1, 1, shape.frames - 1)},
                 1);
  mask = mask.view({1, mask.size(1) / kVaeStrideTime, kVaeStrideTime, h, w});
  return mask.transpose(1, 2)[0].contiguous();  // [4, T, h, w]
}

at::Tensor conditioning_clip_features(models::ClipVision& clip, const at::Tensor& first_image,
                                      const at::Tensor& last_image, at::Device device) {
  std::vector<at::Tensor> images{first_image.to(device, at::kFloat)};
  if (last_image.defined()) images.push_back(last_image.to(device, at::kFloat));
  return clip->encode(images).to(at::kFloat);
}

at::Tensor conditioning_latent(models::WanVae& vae, const at::Tensor& first_image,
                               const at::Tensor& last_image, const VideoShape& shape,
                               at::Device device, const models::VaeRunOptions& vae_options) {
  auto latent = vae->encode(conditioning_video(first_image.to(at::kFloat),
                                               last_image.defined() ? last_image.to(at::kFloat)
                                                                    : at::Tensor(),
                                               shape)
                                .to(device),
                            vae_options);
  return at::cat({frame_mask(shape, last_image.defined()).to(device), latent.to(at::kFloat)}, 0);
}

at::Tensor prepare_last_frame(const at::Tensor& first_image, const at::Tensor& last_image) {
  check_image(first_image, "start_image");
  check_image(last_image, "end_image");
  auto last = last_image.to(at::kFloat);
  const int64_t first_h = first_image.size(1), first_w = first_image.size(2);
  const int64_t last_h = last.size(1), last_w = last.size(2);
  if (first_h == last_h && first_w == last_w) return last;
  // The official code scales the last frame's (width, height) by the larger ratio and passes
  // that pair to center_crop, which reads it as (height, width); reproduced for parity.
  const double ratio = std::max(static_cast<double>(first_w) / last_w,
                                static_cast<double>(first_h) / last_h);
  const auto crop_a = static_cast<int64_t>(std::nearbyint(last_w * ratio));
  const auto crop_b = static_cast<int64_t>(std::nearbyint(last_h * ratio));
  return image::center_crop(last, crop_a, crop_b);
}

}  // namespace wan::pipeline
