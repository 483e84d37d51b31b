// Still (and animated WebP) image files <-> ComfyUI IMAGE/MASK tensors, and the 8-bit conversion
// every writer shares.
//
// Conventions (ComfyUI's): IMAGE is float32 [F, H, W, 3] in [0, 1] on the CPU, MASK is float32
// [F, H, W]. Reading maps a byte v to v / 255. Writing maps x to uint8(clip(255 * x, 0, 255)),
// i.e. truncation toward zero as numpy's astype(np.uint8) does in ComfyUI's SaveImage (not
// rounding), so a saved and reloaded uint8-valued image comes back bit-exact.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace wan::media {

// What a decoder accepts, checked from the header before any pixel is decoded. PIL refuses more
// than 2 x Image.MAX_IMAGE_PIXELS (178,956,970) as a decompression bomb; so does this.
inline constexpr uint64_t kMaxImagePixels = 178956970;
inline constexpr uint64_t kMaxImageSide = 65535;
// Frames x height x width for an animation or a video: 81 frames of 1920x1080 fit, with room.
inline constexpr uint64_t kMaxVideoPixels = uint64_t(1) << 28;
inline constexpr uint64_t kMaxImageFileBytes = uint64_t(1) << 30;

struct LoadedImage {
  at::Tensor image;  // float32 [F, H, W, 3]; F > 1 only for animated WebP
  // float32 [F, H, W]: 1 - alpha / 255 when the file has alpha (RGBA, grey+alpha, palette with
  // tRNS, WebP with alpha), else zeros. ComfyUI's LoadImage returns a [1, 64, 64] placeholder
  // when there is no alpha; this returns [F, H, W] zeros so every MASK matches its image.
  at::Tensor mask;
  bool has_alpha = false;
};

// Decodes a PNG, JPEG or WebP file like ComfyUI's LoadImage: EXIF orientation applied (JPEG APP1,
// PNG eXIf, WebP EXIF), greyscale replicated to RGB, 16-bit PNG reduced to its high byte, every
// frame of an animated WebP (full canvas, as PIL composes it). Throws LoadError naming the file
// for anything but a regular file, a broken file, or a size past the limits above.
LoadedImage load_image(const std::string& path);
// Same from memory; `origin` names the source in errors.
LoadedImage decode_image(const uint8_t* data, size_t size, const std::string& origin);

// The frames and pixels a PNG, JPEG or WebP file decodes to, read from its header (the memory
// planner's view of an image input before it runs). Orientation may swap height and width; the
// pixel count is exact. Throws LoadError naming the file as load_image would for a file it
// cannot read or a size past the limits.
struct ImageExtent {
  int64_t frames = 1, height = 0, width = 0;
  // Decoded from a video file's stream (load_video's decoder), not from image files.
  bool video_file = false;
};
ImageExtent probe_image(const std::string& path);

// ComfyUI's ImageToMask: one channel ("red" | "green" | "blue") of IMAGE [F, H, W, 3] as MASK
// [F, H, W]. "alpha" needs a 4-channel image; IMAGE has 3, so it is a ValidationError that points
// at LoadImage's MASK output (which is 1 - alpha).
at::Tensor image_to_mask(const at::Tensor& image, const std::string& channel);

// IMAGE [F, H, W, 3] (or [H, W, 3]) -> uint8 [F, H, W, 3] contiguous, clip(255 * x, 0, 255)
// truncated. Throws ValidationError naming `what` for a wrong shape, a non-floating dtype, or
// NaN/Inf values (which have no 8-bit meaning; ComfyUI would write garbage).
at::Tensor image_to_uint8(const at::Tensor& image, const std::string& what);
// uint8 [..., 3] -> float32 / 255.
at::Tensor uint8_to_image(const at::Tensor& rgb8);

// Baseline JPEG bytes (libjpeg-turbo, 4:2:0, `quality` 1..100) of uint8 [H, W, 3].
std::vector<uint8_t> encode_jpeg(const at::Tensor& rgb8, int quality, const std::string& origin);

}  // namespace wan::media
