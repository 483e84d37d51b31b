// Writing IMAGE tensors as animated WebP, H.264 MP4, PNG frames, and tensors as safetensors,
// with ComfyUI's embedded workflow metadata (see embedded_metadata.h for where it goes).
//
// Every writer validates first (shape, finite values, fps, even size for MP4), then encodes into
// a temporary name in the target folder and renames it when complete; on any failure, including
// an exception thrown by the progress callback (e.g. Cancelled), nothing is left behind.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "media/embedded_metadata.h"
#include "media/output_files.h"

namespace wan::media {

// Called after each frame is encoded with (frames done, total). May throw to abort the write.
using FrameProgress = std::function<void(int64_t done, int64_t total)>;

// ComfyUI SaveAnimatedWEBP's defaults: lossless, quality 80 (the compression effort when
// lossless), method 4 ("default").
struct WebpOptions {
  bool lossless = true;
  int quality = 80;  // 0..100
  int method = 4;    // 0 (fastest) .. 6 (slowest)
};

// Animated WebP (libwebp WebPAnimEncoder), every frame shown int(1000 / fps) ms as PIL does for
// ComfyUI, looping forever; metadata in an EXIF chunk. Throws ValidationError for fps outside
// (0, 1000] or bad options, Error when encoding or writing fails. Replaces an existing `path`.
void save_webp(const std::string& path, const at::Tensor& images, double fps,
               const OutputMetadata& metadata, const WebpOptions& options = {},
               const FrameProgress& progress = {});

// H.264 (libx264 through libavcodec, encoder defaults: CRF 23, preset medium) in MP4, yuv420p,
// BT.709 limited range tagged with the sRGB transfer as ComfyUI's SaveVideo writes it; frame rate
// round(fps * 1000) / 1000. Odd width or height is a ValidationError (4:2:0 needs even sizes;
// nothing is cropped or padded). Metadata as container tags (movflags use_metadata_tags).
void save_mp4(const std::string& path, const at::Tensor& images, double fps,
              const OutputMetadata& metadata, const FrameProgress& progress = {});

// A folder holding frame_00000.png, frame_00001.png, ... (8-bit RGB, zlib level 4 as ComfyUI's
// SaveImage), each with tEXt "prompt" and one tEXt per extra entry. The folder appears
// complete or not at all (written as a temporary folder, then renamed).
void save_png_frames(const std::string& folder, const at::Tensor& images,
                     const OutputMetadata& metadata, const FrameProgress& progress = {});

// 8-bit RGBA PNG bytes (zlib level 4, as ComfyUI saves a merged mask) of uint8 [H, W, 4].
std::vector<uint8_t> encode_rgba_png(const at::Tensor& rgba8, const std::string& origin);

// The SaveVideo node's formats.
enum class VideoFormat { kWebp, kMp4, kPng };
// "webp" | "mp4" | "png"; anything else is a ValidationError listing the choices.
VideoFormat parse_video_format(const std::string& name);
// File extension of a format ("webp", "mp4"; "" for PNG frames, which form a folder).
std::string video_format_extension(VideoFormat format);

// SaveVideo: writes `images` under output_dir as "<prefix>_<counter:05>_.<ext>" (PNG frames: a
// folder "<prefix>_<counter:05>_/") with ComfyUI's counter naming, never replacing anything.
SavedOutput save_video(const std::string& output_dir, const std::string& filename_prefix,
                       VideoFormat format, const at::Tensor& images, double fps,
                       const OutputMetadata& metadata, const FrameProgress& progress = {},
                       const WebpOptions& webp = {});

// ComfyUI's SaveImage / PreviewImage: one "<prefix>_<counter:05>_.png" per image under
// output_dir, the counter moving on per image, %batch_num% replaced by the image's index; 8-bit
// RGB at zlib `compress_level` (SaveImage 4, PreviewImage 1) with the metadata as tEXt chunks.
std::vector<SavedOutput> save_images(const std::string& output_dir,
                                     const std::string& filename_prefix, const at::Tensor& images,
                                     const OutputMetadata& metadata, int compress_level = 4,
                                     const FrameProgress& progress = {});


}  // namespace wan::media
