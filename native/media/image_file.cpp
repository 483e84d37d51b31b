#include "media/image_file.h"

extern "C" {
#include <webp/decode.h>
#include <webp/demux.h>
}

#include <cstring>
#include <vector>

#include "core/error.h"
#include "media/embedded_metadata.h"
#include "media/output_files.h"

// stb_image is private to this file (static symbols) so it cannot clash with other users.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

namespace wan::media {
namespace {

// Decoded pixels before the tensor conversion.
struct Rgba {
  at::Tensor pixels;  // uint8 [F, H, W, 4]
  bool has_alpha = false;
  int orientation = 1;
};

at::Tensor from_stb(stbi_uc* data, int width, int height, const std::string& origin) {
  if (!data) throw LoadError(origin + ": cannot decode (" + stbi_failure_reason() + ")");
  at::Tensor out = at::empty({1, height, width, 4}, at::kByte);
  std::memcpy(out.data_ptr<uint8_t>(), data, static_cast<size_t>(width) * height * 4);
  stbi_image_free(data);
  return out;
}

Rgba decode_png(const uint8_t* data, size_t size, const std::string& origin) {
  Rgba out;
  // Alpha is decided from the header as PIL does: colour types 4/6, or a palette with tRNS. A
  // tRNS colour key on grey/RGB images does not make PIL (hence ComfyUI) produce a mask.
  uint8_t color_type = 0;
  bool seen_idat = false, palette_trns = false;
  for (const PngChunk& chunk : png_chunks(data, size, origin)) {
    if (chunk.type == "IHDR" && chunk.size >= 13) color_type = chunk.data[9];
    if (chunk.type == "IDAT") seen_idat = true;
    if (chunk.type == "tRNS" && !seen_idat) palette_trns = color_type == 3;
    if (chunk.type == "eXIf") out.orientation = tiff_orientation(chunk.data, chunk.size);
  }
  out.has_alpha = color_type == 4 || color_type == 6 || palette_trns;
  int w = 0, h = 0, comp = 0;
  stbi_uc* px = stbi_load_from_memory(data, static_cast<int>(size), &w, &h, &comp, 4);
  out.pixels = from_stb(px, w, h, origin);
  return out;
}

int jpeg_orientation(const uint8_t* data, size_t size) {
  size_t pos = 2;  // after SOI
  while (pos + 4 <= size && data[pos] == 0xFF) {
    uint8_t marker = data[pos + 1];
    if (marker == 0xDA || marker == 0xD9) break;  // image data starts / ends
    size_t length = (size_t(data[pos + 2]) << 8) | data[pos + 3];
    if (length < 2 || pos + 2 + length > size) break;
    const uint8_t* segment = data + pos + 4;
    if (marker == 0xE1 && length >= 8 && std::memcmp(segment, "Exif\0\0", 6) == 0)
      return tiff_orientation(segment, length - 2);
    pos += 2 + length;
  }
  return 1;
}

Rgba decode_jpeg(const uint8_t* data, size_t size, const std::string& origin) {
  Rgba out;
  out.orientation = jpeg_orientation(data, size);
  int w = 0, h = 0, comp = 0;
  stbi_uc* px = stbi_load_from_memory(data, static_cast<int>(size), &w, &h, &comp, 4);
  out.pixels = from_stb(px, w, h, origin);
  return out;
}

Rgba decode_webp(const uint8_t* data, size_t size, const std::string& origin) {
  Rgba out;
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(data, size, &features) != VP8_STATUS_OK)
    throw LoadError(origin + ": not a valid WebP file (bad header)");
  out.has_alpha = features.has_alpha != 0;
  WebPData webp{data, size};
  if (WebPDemuxer* demux = WebPDemux(&webp)) {
    WebPChunkIterator it;
    if (WebPDemuxGetChunk(demux, "EXIF", 1, &it)) {
      out.orientation = tiff_orientation(it.chunk.bytes, it.chunk.size);
      WebPDemuxReleaseChunkIterator(&it);
    }
    WebPDemuxDelete(demux);
  }
  if (!features.has_animation) {
    int w = 0, h = 0;
    uint8_t* px = WebPDecodeRGBA(data, size, &w, &h);
    if (!px) throw LoadError(origin + ": cannot decode the WebP image data");
    out.pixels = at::empty({1, h, w, 4}, at::kByte);
    std::memcpy(out.pixels.data_ptr<uint8_t>(), px, static_cast<size_t>(w) * h * 4);
    WebPFree(px);
    return out;
  }
  WebPAnimDecoderOptions options;
  WebPAnimDecoderOptionsInit(&options);
  options.color_mode = MODE_RGBA;
  options.use_threads = 0;
  WebPAnimDecoder* decoder = WebPAnimDecoderNew(&webp, &options);
  if (!decoder) throw LoadError(origin + ": cannot decode the WebP animation");
  WebPAnimInfo info;
  WebPAnimDecoderGetInfo(decoder, &info);
  std::vector<at::Tensor> frames;
  const size_t frame_bytes = size_t(info.canvas_width) * info.canvas_height * 4;
  while (WebPAnimDecoderHasMoreFrames(decoder)) {
    uint8_t* canvas = nullptr;
    int timestamp = 0;
    if (!WebPAnimDecoderGetNext(decoder, &canvas, &timestamp)) {
      WebPAnimDecoderDelete(decoder);
      throw LoadError(origin + ": WebP animation frame " + std::to_string(frames.size()) +
                      " cannot be decoded");
    }
    at::Tensor frame = at::empty({int64_t(info.canvas_height), int64_t(info.canvas_width), 4}, at::kByte);
    std::memcpy(frame.data_ptr<uint8_t>(), canvas, frame_bytes);
    frames.push_back(frame);
  }
  WebPAnimDecoderDelete(decoder);
  if (frames.empty()) throw LoadError(origin + ": WebP animation has no frames");
  out.pixels = at::stack(frames);
  return out;
}

// PIL's ImageOps.exif_transpose on [F, H, W, C].
at::Tensor apply_orientation(const at::Tensor& x, int orientation) {
  switch (orientation) {
    case 2: return x.flip({2});                        // mirror left-right
    case 3: return x.flip({1, 2});                     // rotate 180
    case 4: return x.flip({1});                        // mirror top-bottom
    case 5: return x.transpose(1, 2);                  // transpose
    case 6: return x.transpose(1, 2).flip({2});        // rotate 90 clockwise
    case 7: return x.transpose(1, 2).flip({1, 2});     // transverse
    case 8: return x.transpose(1, 2).flip({1});        // rotate 90 counter-clockwise
    default: return x;
  }
}

}  // namespace

LoadedImage decode_image(const uint8_t* data, size_t size, const std::string& origin) {
  Rgba rgba;
  if (size >= 8 && std::memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0) {
    rgba = decode_png(data, size, origin);
  } else if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
    rgba = decode_jpeg(data, size, origin);
  } else if (size >= 12 && std::memcmp(data, "RIFF", 4) == 0 && std::memcmp(data + 8, "WEBP", 4) == 0) {
    rgba = decode_webp(data, size, origin);
  } else {
    throw LoadError(origin + ": unsupported image format (PNG, JPEG and WebP are read)");
  }
  at::Tensor px = apply_orientation(rgba.pixels, rgba.orientation).contiguous();
  LoadedImage out;
  out.has_alpha = rgba.has_alpha;
  out.image = uint8_to_image(px.slice(3, 0, 3)).contiguous();
  if (rgba.has_alpha) {
    // As LoadImage: 1 - alpha / 255, both steps in float32.
    out.mask = at::rsub(px.select(3, 3).to(at::kFloat).div(255.0), 1.0).contiguous();
  } else {
    out.mask = at::zeros({px.size(0), px.size(1), px.size(2)}, at::kFloat);
  }
  return out;
}

LoadedImage load_image(const std::string& path) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  return decode_image(bytes.data(), bytes.size(), path);
}

at::Tensor image_to_mask(const at::Tensor& image, const std::string& channel) {
  if (image.dim() != 4 || image.size(3) < 3)
    throw ValidationError("ImageToMask: image must be [F, H, W, 3], got " +
                          std::string(image.sizes().vec().empty() ? "a scalar" : c10::str(image.sizes())));
  int64_t index = channel == "red" ? 0 : channel == "green" ? 1 : channel == "blue" ? 2
                : channel == "alpha" ? 3 : -1;
  if (index < 0)
    throw ValidationError("ImageToMask: channel '" + channel + "' is not one of red, green, blue, alpha");
  if (index >= image.size(3))
    throw ValidationError("ImageToMask: the image has no alpha channel (IMAGE carries RGB only); use "
                          "LoadImage's MASK output, which is 1 - alpha, instead.");
  return image.select(3, index).contiguous();
}

at::Tensor image_to_uint8(const at::Tensor& image, const std::string& what) {
  at::Tensor x = image.dim() == 3 ? image.unsqueeze(0) : image;
  if (x.dim() != 4 || x.size(3) != 3 || x.size(0) == 0 || x.size(1) == 0 || x.size(2) == 0)
    throw ValidationError(what + ": expected IMAGE [F, H, W, 3] with F, H, W > 0, got " +
                          c10::str(image.sizes()));
  if (!at::isFloatingType(x.scalar_type()))
    throw ValidationError(what + ": expected a floating IMAGE, got " + c10::str(x.scalar_type()));
  x = x.detach().to(at::kCPU, at::kFloat);
  if (!at::isfinite(x).all().item<bool>())
    throw ValidationError(what + ": the images contain NaN or infinite values; nothing was written.");
  // numpy: clip(255. * x, 0, 255).astype(uint8) -- float32 product, then truncation.
  return x.mul(255.0).clamp(0.0, 255.0).to(at::kByte).contiguous();
}

at::Tensor uint8_to_image(const at::Tensor& rgb8) { return rgb8.to(at::kFloat).div(255.0); }

}  // namespace wan::media
