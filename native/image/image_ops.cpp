#include "image/image_ops.h"

#include <limits>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "io/tensor_map.h"

namespace wan::image {

at::Tensor to_wan_image(const at::Tensor& image) {
  if ((image.dim() != 3 && image.dim() != 4) || image.size(-1) != 3)
    throw ValidationError("to_wan_image: expected an IMAGE [H, W, 3] or [B, H, W, 3], got " +
                          io::format_shape(image.sizes()) + ".");
  // [.., H, W, 3] -> [.., 3, H, W]; sub then div like the official .sub_(0.5).div_(0.5).
  const auto chw = image.dim() == 3 ? image.permute({2, 0, 1}) : image.permute({0, 3, 1, 2});
  return chw.to(at::kFloat).sub(0.5).div_(0.5).contiguous();
}

at::Tensor from_wan_image(const at::Tensor& image) {
  if ((image.dim() != 3 && image.dim() != 4) || image.size(0) != 3)
    throw ValidationError("from_wan_image: expected a Wan image [3, H, W] or video [3, T, H, W], got " +
                          io::format_shape(image.sizes()) + ".");
  const auto hwc = image.dim() == 3 ? image.permute({1, 2, 0}) : image.permute({1, 2, 3, 0});
  // One float32 copy in [.., H, W, 3] order, scaled in place: beside the input only the result
  // is allocated (a product and then its contiguous copy were two).
  return at::empty(hwc.sizes(), hwc.options().dtype(at::kFloat)).copy_(hwc).mul_(0.5).add_(0.5);
}

at::Tensor resize_bicubic(const at::Tensor& image, int64_t height, int64_t width) {
  if ((image.dim() != 3 && image.dim() != 4) || !image.is_floating_point())
    throw ValidationError("resize_bicubic: expected a floating [C, H, W] or [N, C, H, W], got " +
                          io::format_shape(image.sizes()) + ".");
  if (height <= 0 || width <= 0)
    throw ValidationError("resize_bicubic: target size " + std::to_string(height) + "x" +
                          std::to_string(width) + " must be positive.");
  const auto batched = image.dim() == 3 ? image.unsqueeze(0) : image;
  // With an explicit size F.interpolate passes no scale factors: the kernel uses in / out.
  auto out = at::upsample_bicubic2d(batched.to(at::kFloat), {height, width},
                                    /*align_corners=*/false);
  return image.dim() == 3 ? out.squeeze(0) : out;
}

at::Tensor center_crop(const at::Tensor& image, int64_t height, int64_t width) {
  if (image.dim() < 2 || height <= 0 || width <= 0)
    throw ValidationError("center_crop: cannot crop " + io::format_shape(image.sizes()) + " to " +
                          std::to_string(height) + "x" + std::to_string(width) + ".");
  auto x = image;
  int64_t h = x.size(-2), w = x.size(-1);
  if (height > h || width > w) {
    // torchvision pads left/top by floor(diff / 2) and right/bottom by ceil(diff / 2) with 0.
    const int64_t left = width > w ? (width - w) / 2 : 0;
    const int64_t right = width > w ? (width - w + 1) / 2 : 0;
    const int64_t top = height > h ? (height - h) / 2 : 0;
    const int64_t bottom = height > h ? (height - h + 1) / 2 : 0;
    x = at::constant_pad_nd(x, {left, right, top, bottom}, 0);
    h = x.size(-2);
    w = x.size(-1);
  }
  // int(round(d / 2.0)) with Python's round half to even: d odd -> the even of d/2 +- 0.5.
  auto offset = [](int64_t d) {
    const int64_t half = d / 2;
    return d % 2 == 0 || half % 2 == 0 ? half : half + 1;
  };
  return x.narrow(-2, offset(h - height), height).narrow(-1, offset(w - width), width).contiguous();
}

}  // namespace wan::image
