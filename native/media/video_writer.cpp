#include "media/video_writer.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <png.h>
#include <webp/encode.h>
#include <webp/mux.h>
}

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "core/error.h"
#include "media/image_file.h"
#include "media/video_file.h"

namespace wan::media {
namespace {

constexpr int kEncoderThreads = 4;

void check_fps(double fps, const std::string& what) {
  if (!std::isfinite(fps) || fps <= 0.0 || fps > 1000.0)
    throw ValidationError(what + ": fps " + std::to_string(fps) + " is outside (0, 1000].");
}

void report(const FrameProgress& progress, int64_t done, int64_t total) {
  if (progress) progress(done, total);
}

// ---- WebP ----

std::vector<uint8_t> webp_exif(const OutputMetadata& metadata) {
  // ComfyUI: prompt in 0x0110 (Model), extra_pnginfo entries from 0x010F (Make) downwards.
  std::vector<TiffAsciiTag> tags;
  if (metadata.prompt) tags.push_back({0x0110, "prompt:" + *metadata.prompt});
  uint16_t tag = 0x010F;
  for (const auto& [key, json] : metadata.extra) tags.push_back({tag--, key + ":" + json});
  return build_tiff_ascii(std::move(tags));
}

// A still WebP (no ANIM chunk) with its EXIF chunk moved to right after VP8X. The ComfyUI
// frontend reads WebP metadata by walking chunks without skipping RIFF's pad byte after an
// odd-sized chunk, so EXIF after an odd-sized VP8L chunk is never found; before the image it
// always is (VP8X is 10 bytes). libwebp and Pillow read either order.
std::vector<uint8_t> exif_first_if_still(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  if (size < 12 || std::memcmp(data, "RIFF", 4) != 0 || std::memcmp(data + 8, "WEBP", 4) != 0)
    return bytes;
  struct Chunk {
    size_t offset, length;  // the whole chunk: header, payload, pad byte
    std::string fourcc;
  };
  std::vector<Chunk> chunks;
  for (size_t at = 12; at + 8 <= size;) {
    const uint32_t payload = data[at + 4] | (data[at + 5] << 8) | (data[at + 6] << 16) |
                             (static_cast<uint32_t>(data[at + 7]) << 24);
    const size_t length = 8 + static_cast<size_t>(payload) + (payload & 1);
    if (length > size - at) return bytes;  // not a file this writer made; leave it as it is
    chunks.push_back({at, length, std::string(reinterpret_cast<const char*>(data + at), 4)});
    at += length;
  }
  auto find = [&](const char* fourcc) {
    for (size_t i = 0; i < chunks.size(); ++i)
      if (chunks[i].fourcc == fourcc) return static_cast<int>(i);
    return -1;
  };
  const int vp8x = find("VP8X"), exif = find("EXIF");
  if (vp8x != 0 || exif < 0 || find("ANIM") >= 0) return bytes;
  std::vector<uint8_t> out(data, data + 12);
  auto append = [&](const Chunk& c) { out.insert(out.end(), data + c.offset, data + c.offset + c.length); };
  append(chunks[vp8x]);
  append(chunks[exif]);
  for (size_t i = 1; i < chunks.size(); ++i)
    if (static_cast<int>(i) != exif) append(chunks[i]);
  return out.size() == size ? out : bytes;  // same chunks, same RIFF size
}

void write_webp_file(const std::string& temp, const at::Tensor& rgb8, double fps,
                     const OutputMetadata& metadata, const WebpOptions& options,
                     const FrameProgress& progress, const std::string& origin) {
  const int frames = static_cast<int>(rgb8.size(0)), height = static_cast<int>(rgb8.size(1)),
            width = static_cast<int>(rgb8.size(2));
  const int duration_ms = static_cast<int>(1000.0 / fps);  // PIL's duration=int(1000.0 / fps)

  WebPAnimEncoderOptions anim;
  if (!WebPAnimEncoderOptionsInit(&anim)) throw Error(origin + ": libwebp version mismatch");
  anim.anim_params.loop_count = 0;
  anim.anim_params.bgcolor = 0;
  // Pillow's keyframe defaults for animated WebP.
  anim.kmin = options.lossless ? 9 : 3;
  anim.kmax = options.lossless ? 17 : 5;
  std::unique_ptr<WebPAnimEncoder, void (*)(WebPAnimEncoder*)> encoder(
      WebPAnimEncoderNew(width, height, &anim), WebPAnimEncoderDelete);
  if (!encoder) throw Error(origin + ": cannot create a WebP encoder for " + std::to_string(width) +
                            "x" + std::to_string(height) + " (WebP allows at most 16383x16383)");
  WebPConfig config;
  if (!WebPConfigPreset(&config, WEBP_PRESET_DEFAULT, static_cast<float>(options.quality)))
    throw Error(origin + ": libwebp version mismatch");
  config.lossless = options.lossless ? 1 : 0;
  config.method = options.method;
  if (!WebPValidateConfig(&config)) throw ValidationError(origin + ": invalid WebP options");

  for (int i = 0; i < frames; ++i) {
    WebPPicture picture;
    WebPPictureInit(&picture);
    picture.width = width;
    picture.height = height;
    picture.use_argb = 1;
    const uint8_t* pixels = rgb8[i].data_ptr<uint8_t>();
    bool ok = WebPPictureImportRGB(&picture, pixels, width * 3) &&
              WebPAnimEncoderAdd(encoder.get(), &picture, i * duration_ms, &config);
    WebPPictureFree(&picture);
    if (!ok)
      throw Error(origin + ": WebP encoding failed at frame " + std::to_string(i) + " (" +
                  WebPAnimEncoderGetError(encoder.get()) + ")");
    report(progress, i + 1, frames);
  }
  // The end timestamp gives the last frame its duration.
  if (!WebPAnimEncoderAdd(encoder.get(), nullptr, frames * duration_ms, nullptr))
    throw Error(origin + ": WebP encoding failed (" + std::string(WebPAnimEncoderGetError(encoder.get())) + ")");
  WebPData assembled;
  WebPDataInit(&assembled);
  if (!WebPAnimEncoderAssemble(encoder.get(), &assembled))
    throw Error(origin + ": WebP assembly failed (" + std::string(WebPAnimEncoderGetError(encoder.get())) + ")");
  std::unique_ptr<WebPData, void (*)(WebPData*)> assembled_guard(&assembled, WebPDataClear);

  if (metadata.empty()) {
    write_new_file(temp, assembled.bytes, assembled.size, origin);
    return;
  }
  std::vector<uint8_t> exif = webp_exif(metadata);
  std::unique_ptr<WebPMux, void (*)(WebPMux*)> mux(WebPMuxCreate(&assembled, 1), WebPMuxDelete);
  WebPData exif_data{exif.data(), exif.size()};
  WebPData out;
  WebPDataInit(&out);
  if (!mux || WebPMuxSetChunk(mux.get(), "EXIF", &exif_data, 1) != WEBP_MUX_OK ||
      WebPMuxAssemble(mux.get(), &out) != WEBP_MUX_OK)
    throw Error(origin + ": cannot add the EXIF metadata chunk to the WebP file");
  std::unique_ptr<WebPData, void (*)(WebPData*)> out_guard(&out, WebPDataClear);
  const std::vector<uint8_t> ordered = exif_first_if_still(out.bytes, out.size);
  write_new_file(temp, ordered.data(), ordered.size(), origin);
}

// ---- MP4 ----

std::string av_error(int code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, text, sizeof(text));
  return text;
}

void check_even(const at::Tensor& rgb8, const std::string& what) {
  int64_t h = rgb8.size(1), w = rgb8.size(2);
  if (w % 2 || h % 2)
    throw ValidationError(what + ": H.264 yuv420p needs an even width and height, got " +
                          std::to_string(w) + "x" + std::to_string(h) +
                          "; resize to an even size, or save as webp or png.");
}

struct OutputContext {
  AVFormatContext* oc = nullptr;
  ~OutputContext() {
    if (!oc) return;
    if (oc->pb && !(oc->oformat->flags & AVFMT_NOFILE)) avio_closep(&oc->pb);
    avformat_free_context(oc);
  }
};

void write_mp4_file(const std::string& temp, const at::Tensor& rgb8, double fps,
                    const OutputMetadata& metadata, const FrameProgress& progress,
                    const std::string& origin) {
  route_ffmpeg_logs();
  const int frames = static_cast<int>(rgb8.size(0)), height = static_cast<int>(rgb8.size(1)),
            width = static_cast<int>(rgb8.size(2));
  const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
  if (!codec) codec = avcodec_find_encoder(AV_CODEC_ID_H264);
  if (!codec) throw Error(origin + ": this libavcodec has no H.264 encoder; save as webp or png.");

  OutputContext out;
  int rc = avformat_alloc_output_context2(&out.oc, nullptr, "mp4", temp.c_str());
  if (rc < 0) throw Error(origin + ": cannot create an MP4 muxer (" + av_error(rc) + ")");
  AVStream* stream = avformat_new_stream(out.oc, nullptr);
  std::unique_ptr<AVCodecContext, void (*)(AVCodecContext*)> ctx(
      avcodec_alloc_context3(codec), [](AVCodecContext* c) { avcodec_free_context(&c); });
  if (!stream || !ctx) throw Error(origin + ": out of memory creating the H.264 encoder");

  // ComfyUI: Fraction(round(fps * 1000), 1000) as the rate, 1/rate as the time base.
  AVRational rate;
  av_reduce(&rate.num, &rate.den, std::llround(fps * 1000.0), 1000, INT32_MAX);
  ctx->width = width;
  ctx->height = height;
  ctx->pix_fmt = AV_PIX_FMT_YUV420P;
  ctx->time_base = av_inv_q(rate);
  ctx->framerate = rate;
  ctx->color_primaries = AVCOL_PRI_BT709;
  ctx->color_trc = AVCOL_TRC_IEC61966_2_1;
  ctx->colorspace = AVCOL_SPC_BT709;
  ctx->color_range = AVCOL_RANGE_MPEG;
  // libx264's bytes depend on its thread count, which it would pick from the CPUs it sees: a
  // fixed count makes the same frames the same file on every machine and CPU layout.
  ctx->thread_count = kEncoderThreads;
  if (out.oc->oformat->flags & AVFMT_GLOBALHEADER) ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  if ((rc = avcodec_open2(ctx.get(), codec, nullptr)) < 0)
    throw Error(origin + ": cannot open the " + codec->name + " encoder (" + av_error(rc) + ")");
  avcodec_parameters_from_context(stream->codecpar, ctx.get());
  stream->time_base = ctx->time_base;
  stream->avg_frame_rate = rate;

  // ComfyUI's order: extra_pnginfo entries, then "prompt".
  for (const auto& [key, json] : metadata.extra) av_dict_set(&out.oc->metadata, key.c_str(), json.c_str(), 0);
  if (metadata.prompt) av_dict_set(&out.oc->metadata, "prompt", metadata.prompt->c_str(), 0);

  if ((rc = avio_open(&out.oc->pb, temp.c_str(), AVIO_FLAG_WRITE)) < 0)
    throw Error(origin + ": cannot create " + temp + " (" + av_error(rc) + ")");
  AVDictionary* options = nullptr;
  // use_metadata_tags keeps custom keys (prompt, workflow); faststart puts the index first.
  av_dict_set(&options, "movflags", "use_metadata_tags+faststart", 0);
  rc = avformat_write_header(out.oc, &options);
  av_dict_free(&options);
  if (rc < 0) throw Error(origin + ": cannot write the MP4 header (" + av_error(rc) + ")");

  std::unique_ptr<SwsContext, void (*)(SwsContext*)> sws(
      sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, AV_PIX_FMT_YUV420P,
                     SWS_BILINEAR | SWS_ACCURATE_RND, nullptr, nullptr, nullptr),
      sws_freeContext);
  if (!sws) throw Error(origin + ": cannot create the RGB -> YUV converter");
  // Full-range RGB to BT.709 limited-range YUV, as ComfyUI reformats with dst_colorspace=BT709.
  sws_setColorspaceDetails(sws.get(), sws_getCoefficients(SWS_CS_DEFAULT), 1,
                           sws_getCoefficients(SWS_CS_ITU709), 0, 0, 1 << 16, 1 << 16);

  std::unique_ptr<AVFrame, void (*)(AVFrame*)> frame(av_frame_alloc(),
                                                     [](AVFrame* f) { av_frame_free(&f); });
  std::unique_ptr<AVPacket, void (*)(AVPacket*)> packet(av_packet_alloc(),
                                                        [](AVPacket* p) { av_packet_free(&p); });
  frame->format = AV_PIX_FMT_YUV420P;
  frame->width = width;
  frame->height = height;
  frame->color_primaries = ctx->color_primaries;
  frame->color_trc = ctx->color_trc;
  frame->colorspace = ctx->colorspace;
  frame->color_range = ctx->color_range;
  if ((rc = av_frame_get_buffer(frame.get(), 0)) < 0)
    throw Error(origin + ": out of memory for a video frame (" + av_error(rc) + ")");

  auto drain = [&]() {
    while (true) {
      int r = avcodec_receive_packet(ctx.get(), packet.get());
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
      if (r < 0) throw Error(origin + ": H.264 encoding failed (" + av_error(r) + ")");
      av_packet_rescale_ts(packet.get(), ctx->time_base, stream->time_base);
      packet->stream_index = stream->index;
      if ((r = av_interleaved_write_frame(out.oc, packet.get())) < 0)
        throw Error(origin + ": writing failed (" + av_error(r) + ")");
    }
  };
  for (int i = 0; i < frames; ++i) {
    if ((rc = av_frame_make_writable(frame.get())) < 0)
      throw Error(origin + ": frame buffer error (" + av_error(rc) + ")");
    const uint8_t* src[1] = {rgb8[i].data_ptr<uint8_t>()};
    int src_stride[1] = {width * 3};
    sws_scale(sws.get(), src, src_stride, 0, height, frame->data, frame->linesize);
    frame->pts = i;
    if ((rc = avcodec_send_frame(ctx.get(), frame.get())) < 0)
      throw Error(origin + ": H.264 encoding failed at frame " + std::to_string(i) + " (" + av_error(rc) + ")");
    drain();
    report(progress, i + 1, frames);
  }
  avcodec_send_frame(ctx.get(), nullptr);
  drain();
  if ((rc = av_write_trailer(out.oc)) < 0)
    throw Error(origin + ": cannot finish the MP4 file (" + av_error(rc) + ")");
  if ((rc = avio_closep(&out.oc->pb)) < 0)
    throw Error(origin + ": write failed on close (" + av_error(rc) + ")");
  spdlog::debug("save_mp4: {} frames {}x{} at {}/{} fps with {}", frames, width, height, rate.num,
                rate.den, codec->name);
}

// ---- PNG ----

void png_to_vector(png_structp png, png_bytep data, png_size_t length) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + length);
}
void png_no_flush(png_structp) {}
void png_error_to_buffer(png_structp png, png_const_charp message) {
  auto* error = static_cast<char*>(png_get_error_ptr(png));
  std::snprintf(error, 256, "%s", message);
  png_longjmp(png, 1);
}
void png_ignore_warning(png_structp, png_const_charp) {}

// libpng reports errors by longjmp, so this function owns no C++ objects with destructors.
bool encode_png(png_bytep* rows, int width, int height, png_text* texts, int text_count,
                std::vector<uint8_t>* out, char* error, int compress_level = 4,
                int color_type = PNG_COLOR_TYPE_RGB) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, error, png_error_to_buffer,
                                            png_ignore_warning);
  if (!png) return false;
  png_infop info = png_create_info_struct(png);
  if (!info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, out, png_to_vector, png_no_flush);
  png_set_IHDR(png, info, width, height, 8, color_type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(png, compress_level);  // SaveImage 4, PreviewImage 1
  if (text_count > 0) png_set_text(png, info, texts, text_count);  // written before IDAT
  png_set_rows(png, info, rows);
  png_write_png(png, info, PNG_TRANSFORM_IDENTITY, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

// One PNG per frame, each with tEXt "prompt" and one tEXt per extra entry (ComfyUI's SaveImage).
class PngFrameEncoder {
 public:
  PngFrameEncoder(const OutputMetadata& metadata, const std::string& origin, int compress_level)
      : origin_(origin), compress_level_(compress_level) {
    if (metadata.prompt) entries_.emplace_back("prompt", *metadata.prompt);
    for (const auto& entry : metadata.extra) entries_.push_back(entry);
    texts_.resize(entries_.size());
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].first.empty() || entries_[i].first.size() > 79)
        throw ValidationError(origin + ": PNG text key '" + entries_[i].first + "' must be 1-79 characters");
      texts_[i] = png_text{};
      texts_[i].compression = PNG_TEXT_COMPRESSION_NONE;  // tEXt, as PIL's add_text for ASCII
      texts_[i].key = const_cast<char*>(entries_[i].first.c_str());
      texts_[i].text = const_cast<char*>(entries_[i].second.c_str());
      texts_[i].text_length = entries_[i].second.size();
    }
  }

  // The PNG bytes of frame `i` of an RGB uint8 tensor [F, H, W, 3].
  const std::vector<uint8_t>& encode(const at::Tensor& rgb8, int64_t i) {
    const int height = static_cast<int>(rgb8.size(1)), width = static_cast<int>(rgb8.size(2));
    rows_.resize(height);
    uint8_t* base = rgb8[i].data_ptr<uint8_t>();
    for (int y = 0; y < height; ++y) rows_[y] = base + static_cast<size_t>(y) * width * 3;
    encoded_.clear();
    char error[256] = {0};
    if (!encode_png(rows_.data(), width, height, texts_.data(), static_cast<int>(texts_.size()),
                    &encoded_, error, compress_level_))
      throw Error(origin_ + ": PNG encoding failed at frame " + std::to_string(i) + " (" + error + ")");
    return encoded_;
  }

 private:
  std::string origin_;
  int compress_level_;
  std::vector<std::pair<std::string, std::string>> entries_;
  std::vector<png_text> texts_;
  std::vector<png_bytep> rows_;
  std::vector<uint8_t> encoded_;
};

void write_png_folder(const std::string& temp, const at::Tensor& rgb8,
                      const OutputMetadata& metadata, const FrameProgress& progress,
                      const std::string& origin) {
  if (::mkdir(temp.c_str(), 0755) != 0)
    throw Error(origin + ": cannot create folder " + temp + " (" + std::strerror(errno) + ")");
  const int64_t frames = rgb8.size(0);
  PngFrameEncoder encoder(metadata, origin, 4);
  for (int64_t i = 0; i < frames; ++i) {
    const auto& encoded = encoder.encode(rgb8, i);
    char name[32];
    std::snprintf(name, sizeof(name), "frame_%05lld.png", static_cast<long long>(i));
    write_new_file(temp + "/" + name, encoded.data(), encoded.size(), origin);
    report(progress, i + 1, frames);
  }
}

}  // namespace

void save_webp(const std::string& path, const at::Tensor& images, double fps,
               const OutputMetadata& metadata, const WebpOptions& options,
               const FrameProgress& progress) {
  at::Tensor rgb8 = image_to_uint8(images, path);
  check_fps(fps, path);
  if (options.quality < 0 || options.quality > 100 || options.method < 0 || options.method > 6)
    throw ValidationError(path + ": WebP quality must be 0..100 and method 0..6");
  write_atomically(path, [&](const std::string& temp) {
    write_webp_file(temp, rgb8, fps, metadata, options, progress, path);
  });
}

void save_mp4(const std::string& path, const at::Tensor& images, double fps,
              const OutputMetadata& metadata, const FrameProgress& progress) {
  at::Tensor rgb8 = image_to_uint8(images, path);
  check_fps(fps, path);
  check_even(rgb8, path);
  write_atomically(path, [&](const std::string& temp) {
    write_mp4_file(temp, rgb8, fps, metadata, progress, path);
  });
}

void save_png_frames(const std::string& folder, const at::Tensor& images,
                     const OutputMetadata& metadata, const FrameProgress& progress) {
  at::Tensor rgb8 = image_to_uint8(images, folder);
  write_atomically(folder, [&](const std::string& temp) {
    write_png_folder(temp, rgb8, metadata, progress, folder);
  });
}

std::vector<uint8_t> encode_rgba_png(const at::Tensor& rgba8, const std::string& origin) {
  if (rgba8.dim() != 3 || rgba8.size(2) != 4 || rgba8.scalar_type() != at::kByte)
    throw ValidationError(origin + ": expected uint8 [H, W, 4], got " + c10::str(rgba8.sizes()) +
                          " " + c10::str(rgba8.scalar_type()));
  const at::Tensor pixels = rgba8.contiguous();
  const int height = static_cast<int>(pixels.size(0)), width = static_cast<int>(pixels.size(1));
  std::vector<png_bytep> rows(height);
  for (int y = 0; y < height; ++y) rows[y] = pixels.data_ptr<uint8_t>() + int64_t(y) * width * 4;
  std::vector<uint8_t> out;
  char error[256] = "";
  if (!encode_png(rows.data(), width, height, nullptr, 0, &out, error, 4, PNG_COLOR_TYPE_RGBA))
    throw Error(origin + ": PNG encoding failed: " + error);
  return out;
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

std::vector<SavedOutput> save_images(const std::string& output_dir,
                                     const std::string& filename_prefix, const at::Tensor& images,
                                     const OutputMetadata& metadata, int compress_level,
                                     const FrameProgress& progress) {
  at::Tensor rgb8 = image_to_uint8(images, "SaveImage");
  if (compress_level < 0 || compress_level > 9)
    throw ValidationError("SaveImage: PNG compress level " + std::to_string(compress_level) + " is not 0..9");
  const std::string origin = "SaveImage (" + filename_prefix + ")";
  PngFrameEncoder encoder(metadata, origin, compress_level);
  std::vector<SavedOutput> saved;
  const int64_t frames = rgb8.size(0);
  for (int64_t i = 0; i < frames; ++i) {
    // ComfyUI's %batch_num% is the index in the batch; the counter moves on per image.
    std::string prefix = filename_prefix;
    for (size_t at = prefix.find("%batch_num%"); at != std::string::npos; at = prefix.find("%batch_num%"))
      prefix.replace(at, 11, std::to_string(i));
    const auto& encoded = encoder.encode(rgb8, i);
    saved.push_back(save_with_counter(output_dir, prefix, "png", rgb8.size(2), rgb8.size(1),
                                      [&](const std::string& temp) {
                                        write_new_file(temp, encoded.data(), encoded.size(), origin);
                                      }));
    report(progress, i + 1, frames);
  }
  if (!saved.empty())
    spdlog::info("SaveImage: {} images {}x{} from {}", frames, rgb8.size(2), rgb8.size(1), saved.front().path);
  return saved;
}

SavedOutput save_video(const std::string& output_dir, const std::string& filename_prefix,
                       VideoFormat format, const at::Tensor& images, double fps,
                       const OutputMetadata& metadata, const FrameProgress& progress,
                       const WebpOptions& webp) {
  // Validate everything before a folder or file is touched.
  at::Tensor rgb8 = image_to_uint8(images, "SaveVideo");
  check_fps(fps, "SaveVideo");
  if (webp.quality < 0 || webp.quality > 100 || webp.method < 0 || webp.method > 6)
    throw ValidationError("SaveVideo: WebP quality must be 0..100 and method 0..6");
  if (format == VideoFormat::kMp4) check_even(rgb8, "SaveVideo");
  const std::string extension = video_format_extension(format);
  SavedOutput saved = save_with_counter(
      output_dir, filename_prefix, extension, rgb8.size(2), rgb8.size(1),
      [&](const std::string& temp) {
        const std::string origin = "SaveVideo (" + filename_prefix + ")";
        switch (format) {
          case VideoFormat::kWebp: write_webp_file(temp, rgb8, fps, metadata, webp, progress, origin); break;
          case VideoFormat::kMp4: write_mp4_file(temp, rgb8, fps, metadata, progress, origin); break;
          case VideoFormat::kPng: write_png_folder(temp, rgb8, metadata, progress, origin); break;
        }
      });
  spdlog::info("SaveVideo: {} ({} frames {}x{})", saved.path, rgb8.size(0), rgb8.size(2), rgb8.size(1));
  return saved;
}

}  // namespace wan::media
