// The tensor conventions around images (files are read by native/media/image_file).
//
// Two conventions meet here:
//   IMAGE (ComfyUI): float32 [H, W, C] (or [B, H, W, C]) in [0, 1], channels last.
//   Wan image: float32 [3, H, W] in [-1, 1], what the official pipelines get from
//     torchvision's to_tensor(img).sub_(0.5).div_(0.5).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace wan::image {

// IMAGE [H, W, 3] -> Wan image [3, H, W] in [-1, 1]; [B, H, W, 3] -> [B, 3, H, W]. Computes
// (x - 0.5) / 0.5 in float32, which reproduces to_tensor(img).sub_(0.5).div_(0.5) bit for bit
// when x = uint8 / 255. Throws ValidationError for another shape.
at::Tensor to_wan_image(const at::Tensor& image);

// Wan image [3, H, W] -> IMAGE [H, W, 3] (x * 0.5 + 0.5); [3, T, H, W] -> [T, H, W, 3].
// Values are not clamped.
at::Tensor from_wan_image(const at::Tensor& image);

// Bicubic resize of [C, H, W] or [N, C, H, W] (channels first) to height x width, as
// F.interpolate(x, size=(height, width), mode='bicubic', align_corners=False) without antialias:
// what the official I2V / FLF2V pipelines apply to the conditioning frames. Computed in float32
// (result in float32); values are not clamped, so they may overshoot the input range.
at::Tensor resize_bicubic(const at::Tensor& image, int64_t height, int64_t width);

// torchvision.transforms.functional.center_crop on a channels-first tensor [..., H, W]: zero-pads
// when the crop is larger than the image, then takes the centred height x width window (offsets
// round half to even, like Python's round). The official FLF2V applies it to the last frame.
at::Tensor center_crop(const at::Tensor& image, int64_t height, int64_t width);

}  // namespace wan::image
