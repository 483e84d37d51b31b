// The media API of a build without codec libraries (cmake -DWAN_WITH_MEDIA=OFF, the device
// machine's build): whatever reads or writes an image, video or metadata container throws an
// error saying so, naming what was asked for. SaveTensor keeps working (safetensors needs no
// codec; media/tensor_file.cpp is in both builds), so graphs ending in it run end to end.
#include "core/error.h"
#include "media/embedded_metadata.h"
#include "media/image_file.h"
#include "media/output_files.h"
#include "media/video_file.h"
#include "media/video_writer.h"

namespace wan::media {
namespace {

[[noreturn]] void built_without_media(const std::string& what) {
  throw Error(what +
              ": this wan-native is built without media (cmake -DWAN_WITH_MEDIA=OFF: no libwebp, "
              "libpng, libjpeg or FFmpeg); rebuild with them, or save results with SaveTensor");
}

}  // namespace

// ---- image_file.h ----------------------------------------------------------------------------

LoadedImage load_image(const std::string& path) { built_without_media("reading image " + path); }
ImageExtent probe_image(const std::string& path) { built_without_media("reading image " + path); }
LoadedImage decode_image(const uint8_t*, size_t, const std::string& origin) {
  built_without_media("decoding image " + origin);
}
at::Tensor image_to_mask(const at::Tensor&, const std::string& channel) {
  built_without_media("ImageToMask (" + channel + ")");
}
at::Tensor image_to_uint8(const at::Tensor&, const std::string& what) {
  built_without_media(what + ": 8-bit image conversion");
}
at::Tensor uint8_to_image(const at::Tensor&) { built_without_media("8-bit image conversion"); }
std::vector<uint8_t> encode_jpeg(const at::Tensor&, int, const std::string& origin) {
  built_without_media(origin + ": encoding JPEG");
}

// ---- video_file.h ----------------------------------------------------------------------------

at::Tensor load_video(const std::string& spec, int64_t) { built_without_media("reading video " + spec); }
std::optional<ImageExtent> probe_video(const std::string& spec, int64_t) {
  built_without_media("reading video " + spec);
}
double video_frame_rate(const std::string& path) {
  built_without_media("reading the frame rate of " + path);
}
std::vector<std::string> list_frame_files(const std::string& spec) {
  built_without_media("listing frame files " + spec);
}
void route_ffmpeg_logs() {}  // no FFmpeg, nothing to route

// ---- video_writer.h --------------------------------------------------------------------------

void save_webp(const std::string& path, const at::Tensor&, double, const OutputMetadata&,
               const WebpOptions&, const FrameProgress&) {
  built_without_media("writing WebP " + path);
}
void save_mp4(const std::string& path, const at::Tensor&, double, const OutputMetadata&,
              const FrameProgress&) {
  built_without_media("writing MP4 " + path);
}
void save_png_frames(const std::string& folder, const at::Tensor&, const OutputMetadata&,
                     const FrameProgress&) {
  built_without_media("writing PNG frames to " + folder);
}
SavedOutput save_video(const std::string&, const std::string& filename_prefix, VideoFormat,
                       const at::Tensor&, double, const OutputMetadata&, const FrameProgress&,
                       const WebpOptions&) {
  built_without_media("SaveVideo (" + filename_prefix + ")");
}
std::vector<SavedOutput> save_images(const std::string&, const std::string& filename_prefix,
                                     const at::Tensor&, const OutputMetadata&, int,
                                     const FrameProgress&) {
  built_without_media("SaveImage (" + filename_prefix + ")");
}

VideoFormat parse_video_format(const std::string& name) {
  if (name == "webp") return VideoFormat::kWebp;
  if (name == "mp4") return VideoFormat::kMp4;
  if (name == "png") return VideoFormat::kPng;
  throw ValidationError("SaveVideo: format '" + name + "' is not one of webp, mp4, png");
}

std::string video_format_extension(VideoFormat format) {
  switch (format) {
    case VideoFormat::kWebp: return "webp";
    case VideoFormat::kMp4: return "mp4";
    default: return "";
  }
}

std::vector<uint8_t> encode_rgba_png(const at::Tensor&, const std::string& origin) {
  built_without_media(origin + ": encoding PNG");
}

// ---- embedded_metadata.h ---------------------------------------------------------------------

std::optional<std::string> OutputMetadata::find(const std::string& key) const {
  if (key == "prompt") return prompt;
  for (const auto& [k, v] : extra)
    if (k == key) return v;
  return std::nullopt;
}
std::string comfy_json_dumps(const nlohmann::ordered_json&) {
  built_without_media("embedding the prompt in an output file");
}
std::string comfy_json_dumps_sorted(const nlohmann::json&) {
  built_without_media("embedding the prompt in an output file");
}
OutputMetadata read_embedded_metadata(const std::string& path) {
  built_without_media("reading the metadata of " + path);
}
std::vector<PngChunk> png_chunks(const uint8_t*, size_t, const std::string& origin) {
  built_without_media("reading PNG chunks of " + origin);
}
std::vector<uint8_t> build_tiff_ascii(std::vector<TiffAsciiTag>) {
  built_without_media("writing EXIF");
}
std::vector<TiffAsciiTag> parse_tiff_ascii(const uint8_t*, size_t) {
  built_without_media("reading EXIF");
}
int tiff_orientation(const uint8_t*, size_t) { built_without_media("reading EXIF orientation"); }

}  // namespace wan::media
