#include "media/image_file.h"

extern "C" {
#include <jpeglib.h>
#include <png.h>
#include <webp/decode.h>
#include <webp/demux.h>
}

#include <csetjmp>
#include <cstdlib>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "io/input_file.h"
#include "media/embedded_metadata.h"
#include "media/output_files.h"

namespace wan::media {
namespace {

// Decoded pixels before the tensor conversion.
struct Rgba {
  at::Tensor pixels;  // uint8 [F, H, W, 4]
  bool has_alpha = false;
  int orientation = 1;
};

// Called with the size a header declares, before any pixel memory is allocated.
void check_image_size(uint64_t width, uint64_t height, uint64_t frames, const std::string& origin) {
  if (width == 0 || height == 0)
    throw LoadError(origin + ": the image header declares an empty " + std::to_string(width) + "x" +
                    std::to_string(height) + " image");
  if (width > kMaxImageSide || height > kMaxImageSide || width * height > kMaxImagePixels)
    throw LoadError(origin + ": " + std::to_string(width) + "x" + std::to_string(height) +
                    " pixels is more than the " + std::to_string(kMaxImagePixels) +
                    " accepted (a decompression bomb or an image far larger than any model input)");
  if (frames > 0 && width * height * frames > kMaxVideoPixels)
    throw LoadError(origin + ": " + std::to_string(frames) + " frames of " + std::to_string(width) +
                    "x" + std::to_string(height) + " pixels are more than the " +
                    std::to_string(kMaxVideoPixels) + " frame pixels accepted");
}

// ---- PNG (libpng). Its errors longjmp back into the two functions that call setjmp; those hold
// no C++ object with a destructor, so nothing is skipped.

struct PngSource {
  const uint8_t* data;
  size_t size;
  size_t pos;
  char error[256];
};

void png_read_bytes(png_structp png, png_bytep out, png_size_t n) {
  auto* src = static_cast<PngSource*>(png_get_io_ptr(png));
  if (n > src->size - src->pos) png_error(png, "the file is truncated");
  std::memcpy(out, src->data + src->pos, n);
  src->pos += n;
}

void png_on_error(png_structp png, png_const_charp message) {
  auto* src = static_cast<PngSource*>(png_get_error_ptr(png));
  std::snprintf(src->error, sizeof src->error, "%s", message);
  png_longjmp(png, 1);
}

void png_on_warning(png_structp, png_const_charp) {}

// Reads the header and sets the transforms to 8-bit RGBA. False on a libpng error.
bool png_begin(png_structp png, png_infop info, png_uint_32* width, png_uint_32* height) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_info(png, info);
  *width = png_get_image_width(png, info);
  *height = png_get_image_height(png, info);
  const int color = png_get_color_type(png, info);
  const int depth = png_get_bit_depth(png, info);
  if (depth == 16) png_set_strip_16(png);  // the high byte, as PIL's "I;16" -> "RGB" path
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  if (!(color & PNG_COLOR_MASK_ALPHA) && !png_get_valid(png, info, PNG_INFO_tRNS))
    png_set_add_alpha(png, 0xFF, PNG_FILLER_AFTER);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  return true;
}

bool png_rows(png_structp png, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  return true;
}

constexpr uint64_t kMaxDeflateRatio = 1032;

struct PngReader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngReader() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

Rgba decode_png(const uint8_t* data, size_t size, const std::string& origin) {
  Rgba out;
  // Alpha is decided from the header as PIL does: colour types 4/6, or a palette with tRNS. A
  // tRNS colour key on grey/RGB images does not make PIL (hence ComfyUI) produce a mask.
  uint8_t color_type = 0;
  bool seen_idat = false, palette_trns = false;
  uint64_t raw_bytes = 0, idat_bytes = 0;
  for (const PngChunk& chunk : png_chunks(data, size, origin)) {
    if (chunk.type == "IHDR" && chunk.size >= 13) {
      color_type = chunk.data[9];
      // Refuse a huge image from its IHDR before libpng allocates anything.
      const uint64_t w = (uint64_t(chunk.data[0]) << 24) | (chunk.data[1] << 16) | (chunk.data[2] << 8) | chunk.data[3];
      const uint64_t h = (uint64_t(chunk.data[4]) << 24) | (chunk.data[5] << 16) | (chunk.data[6] << 8) | chunk.data[7];
      check_image_size(w, h, 0, origin);
      const int channels = color_type == 2 ? 3 : color_type == 4 ? 2 : color_type == 6 ? 4 : 1;
      raw_bytes = h * (1 + (w * channels * chunk.data[8] + 7) / 8);  // filter byte + row
    }
    if (chunk.type == "IDAT") {
      seen_idat = true;
      idat_bytes += chunk.size;
    }
    if (chunk.type == "tRNS" && !seen_idat) palette_trns = color_type == 3;
    if (chunk.type == "eXIf") out.orientation = tiff_orientation(chunk.data, chunk.size);
  }
  out.has_alpha = color_type == 4 || color_type == 6 || palette_trns;
  // Deflate expands at most about 1032:1, so image data too short for the declared size is a
  // truncated or forged file: refused before the pixels are allocated.
  if (idat_bytes * kMaxDeflateRatio + 1024 < raw_bytes)
    throw LoadError(origin + ": " + std::to_string(idat_bytes) + " bytes of PNG image data cannot "
                    "hold the " + std::to_string(raw_bytes) + " bytes its header declares "
                    "(truncated or forged file)");

  PngSource src{data, size, 0, {0}};
  PngReader reader;
  reader.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
  if (!reader.png) throw LoadError(origin + ": cannot start the PNG decoder");
  reader.info = png_create_info_struct(reader.png);
  if (!reader.info) throw LoadError(origin + ": cannot start the PNG decoder");
  png_set_read_fn(reader.png, &src, png_read_bytes);
  png_set_user_limits(reader.png, kMaxImageSide, kMaxImageSide);
  png_set_chunk_malloc_max(reader.png, 64 << 20);  // one ancillary chunk (iCCP, zTXt) at most
  png_uint_32 width = 0, height = 0;
  if (!png_begin(reader.png, reader.info, &width, &height))
    throw LoadError(origin + ": cannot decode the PNG (" + src.error + ")");
  check_image_size(width, height, 0, origin);
  if (png_get_rowbytes(reader.png, reader.info) != size_t(width) * 4 ||
      png_get_channels(reader.png, reader.info) != 4)
    throw LoadError(origin + ": cannot decode the PNG (unsupported pixel layout)");
  out.pixels = at::empty({1, int64_t(height), int64_t(width), 4}, at::kByte);
  std::vector<png_bytep> rows(height);
  for (png_uint_32 y = 0; y < height; ++y) rows[y] = out.pixels.data_ptr<uint8_t>() + size_t(y) * width * 4;
  if (!png_rows(reader.png, rows.data()))
    throw LoadError(origin + ": cannot decode the PNG (" + src.error + ")");
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

// ---- JPEG (libjpeg-turbo); the same setjmp discipline as PNG.

// A progressive file of thousands of tiny scans costs minutes of CPU for a few kilobytes.
constexpr int kMaxJpegScans = 1000;

struct JpegError {
  jpeg_error_mgr base;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void jpeg_on_message(j_common_ptr, int) {}  // warnings (corrupt data recovered) stay quiet

void jpeg_on_progress(j_common_ptr cinfo) {
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number > kMaxJpegScans) {
    auto* err = reinterpret_cast<JpegError*>(cinfo->err);
    std::snprintf(err->message, sizeof err->message, "more than %d scans", kMaxJpegScans);
    std::longjmp(err->jump, 1);
  }
}

bool jpeg_begin(jpeg_decompress_struct* cinfo, JpegError* err, const uint8_t* data, size_t size) {
  if (setjmp(err->jump)) return false;
  jpeg_create_decompress(cinfo);
  jpeg_mem_src(cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(cinfo, TRUE);
  return true;
}

bool jpeg_pixels(jpeg_decompress_struct* cinfo, JpegError* err, uint8_t* out, size_t stride) {
  if (setjmp(err->jump)) return false;
  const bool cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
  cinfo->out_color_space = cmyk ? JCS_CMYK : JCS_EXT_RGBA;
  jpeg_start_decompress(cinfo);
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = out + size_t(cinfo->output_scanline) * stride;
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_decompress(cinfo);
  return true;
}

// PIL's CMYK -> RGB: (255 - C)(255 - K) / 255 with its rounding; Adobe files store CMYK inverted.
void cmyk_to_rgba(uint8_t* px, size_t count, bool inverted) {
  auto muldiv255 = [](int a, int b) {
    const int t = a * b + 128;
    return uint8_t(((t >> 8) + t) >> 8);
  };
  for (size_t i = 0; i < count; ++i, px += 4) {
    const int c = inverted ? px[0] : 255 - px[0], m = inverted ? px[1] : 255 - px[1];
    const int y = inverted ? px[2] : 255 - px[2], k = inverted ? px[3] : 255 - px[3];
    px[0] = muldiv255(c, k), px[1] = muldiv255(m, k), px[2] = muldiv255(y, k), px[3] = 255;
  }
}

Rgba decode_jpeg(const uint8_t* data, size_t size, const std::string& origin) {
  Rgba out;
  out.orientation = jpeg_orientation(data, size);
  jpeg_decompress_struct cinfo{};
  JpegError err{};
  cinfo.err = jpeg_std_error(&err.base);
  err.base.error_exit = jpeg_on_error;
  err.base.emit_message = jpeg_on_message;
  jpeg_progress_mgr progress{};
  progress.progress_monitor = jpeg_on_progress;
  struct Destroy {
    jpeg_decompress_struct* c;
    ~Destroy() { jpeg_destroy_decompress(c); }
  } destroy{&cinfo};
  if (!jpeg_begin(&cinfo, &err, data, size))
    throw LoadError(origin + ": cannot decode the JPEG (" + err.message + ")");
  cinfo.progress = &progress;
  check_image_size(cinfo.image_width, cinfo.image_height, 0, origin);
  // Huffman coding spends at least one bit on every MCU's first DC coefficient: a file with
  // fewer bits than MCUs is truncated or forged (141 bytes claiming 9000x12000 pixels, say).
  if (!cinfo.arith_code && cinfo.max_h_samp_factor > 0 && cinfo.max_v_samp_factor > 0) {
    const uint64_t mcu_w = 8 * uint64_t(cinfo.max_h_samp_factor);
    const uint64_t mcu_h = 8 * uint64_t(cinfo.max_v_samp_factor);
    const uint64_t mcus = ((cinfo.image_width + mcu_w - 1) / mcu_w) * ((cinfo.image_height + mcu_h - 1) / mcu_h);
    if (uint64_t(size) * 8 < mcus)
      throw LoadError(origin + ": " + std::to_string(size) + " bytes of JPEG cannot hold the " +
                      std::to_string(cinfo.image_width) + "x" + std::to_string(cinfo.image_height) +
                      " image its header declares (truncated or forged file)");
  }
  // Working memory beyond the output (progressive coefficients) stays near the image size.
  cinfo.mem->max_memory_to_use = long(cinfo.image_width) * cinfo.image_height * 16 + (64 << 20);
  out.pixels = at::empty({1, int64_t(cinfo.image_height), int64_t(cinfo.image_width), 4}, at::kByte);
  if (!jpeg_pixels(&cinfo, &err, out.pixels.data_ptr<uint8_t>(), size_t(cinfo.image_width) * 4))
    throw LoadError(origin + ": cannot decode the JPEG (" + err.message + ")");
  if (cinfo.out_color_space == JCS_CMYK)
    cmyk_to_rgba(out.pixels.data_ptr<uint8_t>(), size_t(cinfo.image_width) * cinfo.image_height,
                 cinfo.saw_Adobe_marker);
  return out;
}

Rgba decode_webp(const uint8_t* data, size_t size, const std::string& origin) {
  Rgba out;
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(data, size, &features) != VP8_STATUS_OK)
    throw LoadError(origin + ": not a valid WebP file (bad header)");
  out.has_alpha = features.has_alpha != 0;
  check_image_size(uint64_t(features.width), uint64_t(features.height), 0, origin);
  WebPData webp{data, size};
  if (WebPDemuxer* demux = WebPDemux(&webp)) {
    // An animation is decoded onto its full canvas, once per frame: bound both before decoding.
    if (features.has_animation) {
      const uint64_t w = WebPDemuxGetI(demux, WEBP_FF_CANVAS_WIDTH);
      const uint64_t h = WebPDemuxGetI(demux, WEBP_FF_CANVAS_HEIGHT);
      const uint64_t frames = WebPDemuxGetI(demux, WEBP_FF_FRAME_COUNT);
      try {
        check_image_size(w, h, frames, origin);
      } catch (...) {
        WebPDemuxDelete(demux);
        throw;
      }
    }
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
  try {
    check_image_size(info.canvas_width, info.canvas_height, info.frame_count, origin);
  } catch (...) {
    WebPAnimDecoderDelete(decoder);
    throw;
  }
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
    if (frames.size() >= info.frame_count) break;  // never more than the header announced
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
  const std::string bytes = io::read_regular_file(path, kMaxImageFileBytes);
  return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
}

namespace {

uint32_t big_endian(const uint8_t* p, int bytes) {
  uint32_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

// The SOFn segment's height and width; {0, 0} when the markers end before one.
std::pair<uint32_t, uint32_t> jpeg_frame_size(const uint8_t* data, size_t size) {
  size_t pos = 2;  // after SOI
  while (pos + 9 <= size && data[pos] == 0xFF) {
    const uint8_t marker = data[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0xDA || marker == 0xD9) break;
    const size_t length = big_endian(data + pos + 2, 2);
    if (length < 2) break;
    const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 &&
                     marker != 0xCC;
    if (sof) return {big_endian(data + pos + 5, 2), big_endian(data + pos + 7, 2)};
    pos += 2 + length;
  }
  return {0, 0};
}

}  // namespace

namespace {

// The first `count` bytes of the regular file `path` (all of a shorter one).
std::string read_head(const std::string& path, size_t count) {
  const uint64_t size = io::require_regular_file(path, kMaxImageFileBytes);
  std::string head(static_cast<size_t>(std::min<uint64_t>(size, count)), '\0');
  std::ifstream in(path, std::ios::binary);
  if (!in.read(head.data(), static_cast<std::streamsize>(head.size())))
    throw LoadError(path + ": cannot read the image header");
  return head;
}

}  // namespace

ImageExtent probe_image(const std::string& path) {
  // The planner probes every input on each of the plans placement auto makes: read the header
  // only, and the whole file only where the size is not in its first bytes (a JPEG whose
  // metadata comes first, an animated WebP's frame count).
  constexpr size_t kHeadBytes = 64 << 10;
  std::string bytes = read_head(path, kHeadBytes);
  const bool whole = bytes.size() < kHeadBytes;
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t size = bytes.size();
  auto read_whole = [&] {
    if (whole) return;
    bytes = io::read_regular_file(path, kMaxImageFileBytes);
    data = reinterpret_cast<const uint8_t*>(bytes.data());
    size = bytes.size();
  };
  ImageExtent out;
  if (size >= 24 && std::memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0 &&
      std::memcmp(data + 12, "IHDR", 4) == 0) {
    out.width = big_endian(data + 16, 4);
    out.height = big_endian(data + 20, 4);
  } else if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
    auto [h, w] = jpeg_frame_size(data, size);
    if (h == 0 && w == 0) {
      read_whole();
      std::tie(h, w) = jpeg_frame_size(data, size);
    }
    out.height = h;
    out.width = w;
  } else if (size >= 12 && std::memcmp(data, "RIFF", 4) == 0 && std::memcmp(data + 8, "WEBP", 4) == 0) {
    WebPBitstreamFeatures features;
    if (WebPGetFeatures(data, size, &features) != VP8_STATUS_OK)
      throw LoadError(path + ": not a valid WebP file (bad header)");
    out.width = features.width;
    out.height = features.height;
    if (features.has_animation) {
      read_whole();
      WebPData webp{data, size};
      if (WebPDemuxer* demux = WebPDemux(&webp)) {
        out.width = WebPDemuxGetI(demux, WEBP_FF_CANVAS_WIDTH);
        out.height = WebPDemuxGetI(demux, WEBP_FF_CANVAS_HEIGHT);
        out.frames = WebPDemuxGetI(demux, WEBP_FF_FRAME_COUNT);
        WebPDemuxDelete(demux);
      }
    }
  } else {
    throw LoadError(path + ": unsupported image format (PNG, JPEG and WebP are read)");
  }
  check_image_size(uint64_t(out.width), uint64_t(out.height), uint64_t(out.frames), path);
  return out;
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
  x = x.detach();
  // One frame at a time, so that beside the uint8 result only one frame's float32 product is
  // alive (the whole clip's product and its clamped copy were 8 bytes per pixel channel).
  at::Tensor out = at::empty(x.sizes(), at::kByte);
  for (int64_t f = 0; f < x.size(0); ++f) {
    const at::Tensor frame = x[f].to(at::kCPU, at::kFloat);
    if (!at::isfinite(frame).all().item<bool>())
      throw ValidationError(what + ": the images contain NaN or infinite values (frame " +
                            std::to_string(f) + "); nothing was written.");
    // numpy: clip(255. * x, 0, 255).astype(uint8) -- float32 product, then truncation.
    out[f].copy_(frame.mul(255.0).clamp_(0.0, 255.0).to(at::kByte));
  }
  return out;
}

at::Tensor uint8_to_image(const at::Tensor& rgb8) { return rgb8.to(at::kFloat).div(255.0); }

namespace {

// libjpeg reports errors by longjmp, so this function owns no C++ objects with destructors.
bool compress_jpeg(const uint8_t* pixels, int width, int height, int quality, uint8_t** out,
                   unsigned long* out_size, JpegError* err) {
  jpeg_compress_struct cinfo = {};
  cinfo.err = jpeg_std_error(&err->base);
  err->base.error_exit = jpeg_on_error;
  err->base.emit_message = jpeg_on_message;
  if (setjmp(err->jump)) {
    jpeg_destroy_compress(&cinfo);
    return false;
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, out, out_size);
  cinfo.image_width = static_cast<JDIMENSION>(width);
  cinfo.image_height = static_cast<JDIMENSION>(height);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(pixels) + size_t(cinfo.next_scanline) * width * 3;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  return true;
}

}  // namespace

std::vector<uint8_t> encode_jpeg(const at::Tensor& rgb8, int quality, const std::string& origin) {
  if (rgb8.dim() != 3 || rgb8.size(2) != 3 || rgb8.scalar_type() != at::kByte || rgb8.size(0) < 1 ||
      rgb8.size(1) < 1 || rgb8.size(0) > int64_t(kMaxImageSide) || rgb8.size(1) > int64_t(kMaxImageSide))
    throw ValidationError(origin + ": expected uint8 [H, W, 3], got " + c10::str(rgb8.sizes()) +
                          " " + c10::str(rgb8.scalar_type()));
  if (quality < 1 || quality > 100)
    throw ValidationError(origin + ": JPEG quality must be 1..100, got " + std::to_string(quality));
  const at::Tensor pixels = rgb8.contiguous();
  uint8_t* buffer = nullptr;
  unsigned long size = 0;
  JpegError err{};
  const bool ok = compress_jpeg(pixels.data_ptr<uint8_t>(), static_cast<int>(pixels.size(1)),
                                static_cast<int>(pixels.size(0)), quality, &buffer, &size, &err);
  std::vector<uint8_t> out;
  if (ok) out.assign(buffer, buffer + size);
  std::free(buffer);
  if (!ok) throw Error(origin + ": JPEG encoding failed: " + err.message);
  return out;
}

}  // namespace wan::media
