#include "media/video_file.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
}

#include <glob.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstring>
#include <mutex>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/error.h"
#include "io/input_file.h"
#include "media/image_file.h"

namespace wan::media {
namespace fs = std::filesystem;
namespace {

// libavformat demuxers for files that carry video frames (names as av_find_input_format knows
// them). Playlists and scripts that reference other inputs are left out on purpose.
constexpr const char* kVideoFormats =
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,gif,mpeg,mpegts,flv,ogg,h264,hevc,m4v,mjpeg,"
    "apng,ivf,nut,yuv4mpegpipe,webp_pipe,png_pipe,jpeg_pipe";

bool is_glob(const std::string& spec) { return spec.find_first_of("*?[") != std::string::npos; }

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool is_frame_extension(const fs::path& p) {
  std::string ext = lower(p.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".webp";
}

std::string size_text(const at::Tensor& image) {
  return std::to_string(image.size(2)) + "x" + std::to_string(image.size(1));
}

std::string av_error(int code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, text, sizeof(text));
  return text;
}

// True when the file starts like a still/animated image that load_image reads.
bool looks_like_image(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  uint8_t head[12] = {0};
  in.read(reinterpret_cast<char*>(head), sizeof(head));
  size_t n = static_cast<size_t>(in.gcount());
  return (n >= 8 && std::memcmp(head, "\x89PNG\r\n\x1a\n", 8) == 0) ||
         (n >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF) ||
         (n >= 12 && std::memcmp(head, "RIFF", 4) == 0 && std::memcmp(head + 8, "WEBP", 4) == 0);
}

// Frames x pixels so far plus `more` must stay within kMaxVideoPixels.
void check_video_pixels(uint64_t frames, uint64_t width, uint64_t height, const std::string& origin) {
  if (width * height > kMaxImagePixels)
    throw LoadError(origin + ": frames of " + std::to_string(width) + "x" + std::to_string(height) +
                    " pixels are more than the " + std::to_string(kMaxImagePixels) + " accepted");
  if (frames * width * height > kMaxVideoPixels)
    throw LoadError(origin + ": " + std::to_string(frames) + " frames of " + std::to_string(width) +
                    "x" + std::to_string(height) + " are more than the " +
                    std::to_string(kMaxVideoPixels) +
                    " frame pixels accepted; set frame_load_cap to load fewer frames");
}

at::Tensor load_frame_files(const std::vector<std::string>& files, int64_t cap) {
  std::vector<at::Tensor> frames;
  int64_t count = 0;
  for (const auto& file : files) {
    at::Tensor image = load_image(file).image;
    check_video_pixels(uint64_t(count + image.size(0)), image.size(2), image.size(1), file);
    if (!frames.empty() && image.sizes().slice(1) != frames.front().sizes().slice(1))
      throw LoadError(file + ": frame is " + size_text(image) + " but " + files.front() + " is " +
                      size_text(frames.front()) + "; all frames of a video must share a size.");
    if (cap > 0 && count + image.size(0) > cap) image = image.slice(0, 0, cap - count);
    count += image.size(0);
    frames.push_back(image);
    if (cap > 0 && count >= cap) break;
  }
  return at::cat(frames);
}

struct FormatCloser {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecFreer {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameFreer {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsFreer {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};

bool is_full_range(const AVFrame* frame) {
  auto fmt = static_cast<AVPixelFormat>(frame->format);
  return frame->color_range == AVCOL_RANGE_JPEG || fmt == AV_PIX_FMT_YUVJ420P ||
         fmt == AV_PIX_FMT_YUVJ422P || fmt == AV_PIX_FMT_YUVJ444P;
}

void ffmpeg_log(void* avcl, int level, const char* fmt, va_list args) {
  if (level > AV_LOG_VERBOSE) return;
  char line[1024];
  int print_prefix = 1;
  av_log_format_line2(avcl, level, fmt, args, line, sizeof(line), &print_prefix);
  std::string text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) return;
  if (level <= AV_LOG_WARNING) spdlog::warn("ffmpeg: {}", text);
  else spdlog::debug("ffmpeg: {}", text);
}

// A local video file opened with its stream information read. Only local files, and only
// containers that hold frames: a playlist or concat script (hls, concat, image2 patterns) would
// otherwise make libavformat open other files or URLs.
std::unique_ptr<AVFormatContext, FormatCloser> open_video_file(const std::string& path) {
  route_ffmpeg_logs();
  io::require_regular_file(path, UINT64_MAX);
  AVFormatContext* raw_fmt = avformat_alloc_context();
  if (!raw_fmt) throw LoadError(path + ": cannot allocate a demuxer");
  raw_fmt->format_whitelist = av_strdup(kVideoFormats);
  AVDictionary* open_options = nullptr;
  av_dict_set(&open_options, "protocol_whitelist", "file", 0);
  int rc = avformat_open_input(&raw_fmt, path.c_str(), nullptr, &open_options);
  av_dict_free(&open_options);
  if (rc < 0) throw LoadError(path + ": cannot open as a video (" + av_error(rc) + ")");
  std::unique_ptr<AVFormatContext, FormatCloser> fmt(raw_fmt);
  if ((rc = avformat_find_stream_info(fmt.get(), nullptr)) < 0)
    throw LoadError(path + ": cannot read stream information (" + av_error(rc) + ")");
  return fmt;
}

at::Tensor decode_video_file(const std::string& path, int64_t cap) {
  auto fmt = open_video_file(path);
  int rc = 0;
  const AVCodec* codec = nullptr;
  int stream_index = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
  if (stream_index < 0 || !codec) throw LoadError(path + ": has no decodable video stream");
  AVStream* stream = fmt->streams[stream_index];

  std::unique_ptr<AVCodecContext, CodecFreer> dec(avcodec_alloc_context3(codec));
  avcodec_parameters_to_context(dec.get(), stream->codecpar);
  dec->thread_count = 0;  // let libavcodec pick
  if ((rc = avcodec_open2(dec.get(), codec, nullptr)) < 0)
    throw LoadError(path + ": cannot open the " + codec->name + " decoder (" + av_error(rc) + ")");
  if (dec->width > 0 && dec->height > 0) check_video_pixels(1, dec->width, dec->height, path);

  std::unique_ptr<AVFrame, FrameFreer> frame(av_frame_alloc());
  std::unique_ptr<AVPacket, PacketFreer> packet(av_packet_alloc());
  SwsContext* sws_raw = nullptr;
  std::unique_ptr<SwsContext, SwsFreer> sws;
  std::vector<at::Tensor> frames;
  int width = 0, height = 0;
  bool done = false;

  auto receive = [&]() {
    while (!done) {
      int r = avcodec_receive_frame(dec.get(), frame.get());
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
      if (r < 0) throw LoadError(path + ": decoding failed at frame " +
                                 std::to_string(frames.size()) + " (" + av_error(r) + ")");
      check_video_pixels(frames.size() + 1, frame->width, frame->height, path);
      if (frames.empty()) {
        width = frame->width;
        height = frame->height;
      } else if (frame->width != width || frame->height != height) {
        throw LoadError(path + ": frame " + std::to_string(frames.size()) + " is " +
                        std::to_string(frame->width) + "x" + std::to_string(frame->height) +
                        " but the first is " + std::to_string(width) + "x" +
                        std::to_string(height) + "; all frames must share a size.");
      }
      sws_raw = sws_getCachedContext(sws.release(), width, height,
                                     static_cast<AVPixelFormat>(frame->format), width, height,
                                     AV_PIX_FMT_RGB24,
                                     SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr,
                                     nullptr, nullptr);
      sws.reset(sws_raw);
      if (!sws) throw LoadError(path + ": no conversion from pixel format " +
                                std::string(av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame->format))) +
                                " to RGB24");
      // Use the matrix and range the stream declares; swscale would otherwise assume BT.601
      // limited range, shifting the colours of BT.709 material.
      int colorspace = frame->colorspace == AVCOL_SPC_UNSPECIFIED ? SWS_CS_DEFAULT : frame->colorspace;
      sws_setColorspaceDetails(sws.get(), sws_getCoefficients(colorspace), is_full_range(frame.get()),
                               sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
      at::Tensor rgb = at::empty({height, width, 3}, at::kByte);
      uint8_t* dst[4] = {rgb.data_ptr<uint8_t>(), nullptr, nullptr, nullptr};
      int dst_stride[4] = {width * 3, 0, 0, 0};
      sws_scale(sws.get(), frame->data, frame->linesize, 0, height, dst, dst_stride);
      av_frame_unref(frame.get());
      frames.push_back(rgb);
      if (cap > 0 && static_cast<int64_t>(frames.size()) >= cap) done = true;
    }
  };

  while (!done && av_read_frame(fmt.get(), packet.get()) >= 0) {
    if (packet->stream_index == stream_index) {
      rc = avcodec_send_packet(dec.get(), packet.get());
      av_packet_unref(packet.get());
      if (rc < 0 && rc != AVERROR(EAGAIN))
        throw LoadError(path + ": corrupt packet near frame " + std::to_string(frames.size()) +
                        " (" + av_error(rc) + ")");
      receive();
    } else {
      av_packet_unref(packet.get());
    }
  }
  if (!done) {
    avcodec_send_packet(dec.get(), nullptr);  // drain the decoder's delayed frames
    receive();
  }
  if (frames.empty()) throw LoadError(path + ": the video stream has no frames");
  spdlog::debug("load_video: {} -> {} frames {}x{} ({})", path, frames.size(), width, height,
                codec->name);
  // The frames go once stacked, and the float32 IMAGE is scaled in place: at most 15 bytes a
  // pixel at once (the planned peak, WanLoadImageFrames) instead of 30.
  at::Tensor rgb = at::stack(frames);
  frames.clear();
  return rgb.to(at::kFloat).div_(255.0);
}

// The extent the decoder would give, from the container's header (see probe_video).
std::optional<ImageExtent> probe_video_file(const std::string& path, int64_t cap) {
  const auto fmt = open_video_file(path);
  const int index = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (index < 0) throw LoadError(path + ": has no decodable video stream");
  const AVStream* stream = fmt->streams[index];
  ImageExtent out;
  out.video_file = true;
  out.width = stream->codecpar->width;
  out.height = stream->codecpar->height;
  out.frames = stream->nb_frames;
  if (out.frames <= 0) {
    AVRational rate = stream->avg_frame_rate;
    if (rate.num <= 0 || rate.den <= 0) rate = stream->r_frame_rate;
    double seconds = -1;
    if (stream->duration != AV_NOPTS_VALUE && stream->duration > 0)
      seconds = static_cast<double>(stream->duration) * av_q2d(stream->time_base);
    else if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0)
      seconds = static_cast<double>(fmt->duration) / AV_TIME_BASE;
    if (seconds <= 0 || rate.num <= 0 || rate.den <= 0) return std::nullopt;
    out.frames = static_cast<int64_t>(std::ceil(seconds * av_q2d(rate) - 1e-6));
  }
  if (out.width <= 0 || out.height <= 0 || out.frames <= 0) return std::nullopt;
  if (cap > 0) out.frames = std::min(out.frames, cap);
  return out;
}

}  // namespace

void route_ffmpeg_logs() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_callback(ffmpeg_log); });
}

std::vector<std::string> list_frame_files(const std::string& spec) {
  std::vector<std::string> files;
  if (is_glob(spec)) {
    glob_t matches{};
    int rc = ::glob(spec.c_str(), 0, nullptr, &matches);
    if (rc == 0)
      for (size_t i = 0; i < matches.gl_pathc; ++i)
        if (fs::is_regular_file(matches.gl_pathv[i])) files.emplace_back(matches.gl_pathv[i]);
    globfree(&matches);
    std::sort(files.begin(), files.end());
  } else if (fs::is_directory(spec)) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(spec, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.empty() || name[0] == '.' || !entry.is_regular_file() || !is_frame_extension(entry.path()))
        continue;
      files.push_back(entry.path().string());
    }
    if (ec) throw LoadError(spec + ": cannot list the folder (" + ec.message() + ")");
    std::sort(files.begin(), files.end());
  }
  return files;
}

namespace {

// The image files `spec` stands for (a glob, a folder, or one image file), or none for a video
// file; LoadError as load_video gives for a spec that names nothing readable.
std::optional<std::vector<std::string>> image_files_of(const std::string& spec) {
  if (is_glob(spec) || fs::is_directory(spec)) {
    std::vector<std::string> files = list_frame_files(spec);
    if (files.empty())
      throw LoadError(spec + ": no frame files found" +
                      (is_glob(spec) ? std::string(" matching the pattern")
                                     : std::string(" (.png, .jpg, .jpeg, .webp) in the folder")));
    return files;
  }
  if (!fs::exists(spec)) throw LoadError(spec + ": no such video file, folder or pattern");
  io::require_regular_file(spec, UINT64_MAX);  // a FIFO or a device would block the readers
  if (looks_like_image(spec)) return std::vector<std::string>{spec};
  return std::nullopt;
}

}  // namespace

at::Tensor load_video(const std::string& spec, int64_t frame_load_cap) {
  if (frame_load_cap < 0)
    throw ValidationError("LoadVideo: frame_load_cap is " + std::to_string(frame_load_cap) +
                          "; use 0 for all frames or a positive count.");
  if (const auto files = image_files_of(spec)) return load_frame_files(*files, frame_load_cap);
  return decode_video_file(spec, frame_load_cap);
}

std::optional<ImageExtent> probe_video(const std::string& spec, int64_t frame_load_cap) {
  const auto files = image_files_of(spec);
  if (!files) return probe_video_file(spec, frame_load_cap);
  ImageExtent out;
  out.frames = 0;
  for (const auto& file : *files) {
    const ImageExtent frame = probe_image(file);
    if (out.frames == 0) {
      out.height = frame.height;
      out.width = frame.width;
    }
    out.frames += frame.frames;
    if (frame_load_cap > 0 && out.frames >= frame_load_cap) {
      out.frames = frame_load_cap;
      break;
    }
  }
  return out;
}

double video_frame_rate(const std::string& path) {
  const auto fmt = open_video_file(path);
  const int index = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (index < 0) throw LoadError(path + ": has no video stream");
  // ComfyUI's VideoFromFile reports the stream's average rate, else its base rate.
  AVRational rate = fmt->streams[index]->avg_frame_rate;
  if (rate.num <= 0 || rate.den <= 0) rate = fmt->streams[index]->r_frame_rate;
  if (rate.num <= 0 || rate.den <= 0) throw LoadError(path + ": the video stream declares no frame rate");
  return av_q2d(rate);
}

}  // namespace wan::media
