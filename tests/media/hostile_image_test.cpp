// Hostile images and videos: sizes are checked from the header before pixels are decoded, only
// regular files are opened, and a broken file is a LoadError, never a crash.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

extern "C" {
#include <jpeglib.h>
#include <webp/encode.h>
#include <webp/mux.h>
}

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>

#include "core/error.h"
#include "media/image_file.h"
#include "media/output_files.h"
#include "media/video_file.h"
#include "test_util.h"

namespace wan::media {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

uint32_t crc32(const uint8_t* data, size_t n) {
  uint32_t crc = ~0u;
  for (size_t i = 0; i < n; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void put32(Bytes& out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void png_chunk(Bytes& out, const char* type, const Bytes& data) {
  put32(out, static_cast<uint32_t>(data.size()));
  const size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  put32(out, crc32(out.data() + start, out.size() - start));
}

// A PNG of a declared size, built by hand: IHDR, an IDAT of one stored zlib block of zero rows
// (only `rows` of them, so the file stays small whatever it claims), IEND.
Bytes png_claiming(uint32_t width, uint32_t height, uint32_t rows = 1) {
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  Bytes ihdr;
  put32(ihdr, width);
  put32(ihdr, height);
  ihdr.insert(ihdr.end(), {8, 0, 0, 0, 0});  // 8-bit greyscale
  png_chunk(png, "IHDR", ihdr);
  const uint32_t raw = std::min<uint32_t>(rows * (width + 1), 60000);
  Bytes idat = {0x78, 0x01, 0x01, uint8_t(raw), uint8_t(raw >> 8), uint8_t(~raw), uint8_t(~raw >> 8)};
  idat.resize(idat.size() + raw, 0);
  put32(idat, ((raw % 65521) << 16) | 1);  // adler32 of `raw` zero bytes
  png_chunk(png, "IDAT", idat);
  png_chunk(png, "IEND", {});
  return png;
}

Bytes jpeg_of(int width, int height) {
  jpeg_compress_struct cinfo{};
  jpeg_error_mgr err{};
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = width;
  cinfo.image_height = height;
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<uint8_t> row(width * 3);
  while (cinfo.next_scanline < cinfo.image_height) {
    for (int x = 0; x < width; ++x) row[3 * x] = uint8_t(x * 7 + cinfo.next_scanline);
    JSAMPROW rows[1] = {row.data()};
    jpeg_write_scanlines(&cinfo, rows, 1);
  }
  jpeg_finish_compress(&cinfo);
  Bytes out(buffer, buffer + size);
  jpeg_destroy_compress(&cinfo);
  free(buffer);
  return out;
}

// Patches the frame size in a baseline JPEG's SOF0 marker.
void set_jpeg_size(Bytes& jpeg, uint16_t width, uint16_t height) {
  for (size_t i = 2; i + 9 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC0) {
      jpeg[i + 5] = height >> 8, jpeg[i + 6] = height & 0xFF;
      jpeg[i + 7] = width >> 8, jpeg[i + 8] = width & 0xFF;
      return;
    }
  }
  ADD_FAILURE() << "no SOF0 marker";
}

// An animated WebP of `frames` tiny frames whose VP8X canvas is then set to width x height.
Bytes animated_webp(int frames, int width, int height) {
  WebPAnimEncoderOptions options;
  WebPAnimEncoderOptionsInit(&options);
  WebPAnimEncoder* encoder = WebPAnimEncoderNew(8, 8, &options);
  WebPConfig config;
  WebPConfigInit(&config);
  config.lossless = 1;
  WebPPicture picture;
  WebPPictureInit(&picture);
  picture.width = 8, picture.height = 8, picture.use_argb = 1;
  WebPPictureAlloc(&picture);
  for (int f = 0; f < frames; ++f) {
    for (int i = 0; i < 64; ++i) picture.argb[i] = 0xFF000000u | (f * 40 << 16) | i;
    WebPAnimEncoderAdd(encoder, &picture, f * 100, &config);
  }
  WebPAnimEncoderAdd(encoder, nullptr, frames * 100, nullptr);
  WebPData data;
  WebPDataInit(&data);
  WebPAnimEncoderAssemble(encoder, &data);
  Bytes out(data.bytes, data.bytes + data.size);
  WebPDataClear(&data);
  WebPPictureFree(&picture);
  WebPAnimEncoderDelete(encoder);
  // RIFF header (12) + "VP8X" (4) + size (4) + flags (4): canvas width-1, height-1 as 24-bit LE.
  EXPECT_EQ(std::memcmp(out.data() + 12, "VP8X", 4), 0);
  for (int i = 0; i < 3; ++i) {
    out[24 + i] = uint8_t((width - 1) >> (8 * i));
    out[27 + i] = uint8_t((height - 1) >> (8 * i));
  }
  return out;
}

std::string decode_error(const Bytes& bytes) {
  try {
    decode_image(bytes.data(), bytes.size(), "hostile");
  } catch (const LoadError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a LoadError";
  return "";
}

fs::path scratch(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("wan_hostile_image_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

TEST(HostileImage, HugePngHeaderIsRefusedBeforeDecoding) {
  const auto start = std::chrono::steady_clock::now();
  for (auto [w, h] : std::vector<std::pair<uint32_t, uint32_t>>{
           {16000, 16000}, {13380, 13380}, {1, 200000000}, {0x7FFFFFFF, 0x7FFFFFFF}, {70000, 1}}) {
    const Bytes png = png_claiming(w, h);
    EXPECT_LT(png.size(), 61000u);
    EXPECT_NE(decode_error(png).find("pixels"), std::string::npos) << w << "x" << h;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // The rule is the limit, not these sizes: one row under it decodes.
  EXPECT_EQ(decode_image(png_claiming(64, 3, 3).data(), png_claiming(64, 3, 3).size(), "ok")
                .image.sizes(),
            (at::IntArrayRef{1, 3, 64, 3}));
  EXPECT_NE(decode_error(png_claiming(0, 10)).find("empty"), std::string::npos);
}

// Under the pixel limit, but with far too little image data for its size: deflate cannot expand
// more than about 1000:1, so the file is refused before 144 M pixels are allocated.
TEST(HostileImage, PngDataTooShortForItsHeaderIsRefused) {
  for (uint32_t side : {12000u, 8000u, 4000u}) {
    const Bytes png = png_claiming(side, side, 2);
    EXPECT_NE(decode_error(png).find("cannot hold"), std::string::npos) << side;
  }
  const Bytes whole = png_claiming(200, 50, 50);  // all rows present: decodes
  EXPECT_EQ(decode_image(whole.data(), whole.size(), "ok").image.size(1), 50);
}

TEST(HostileImage, HugeJpegHeaderIsRefusedBeforeDecoding) {
  Bytes jpeg = jpeg_of(16, 8);
  EXPECT_EQ(decode_image(jpeg.data(), jpeg.size(), "ok").image.sizes(), (at::IntArrayRef{1, 8, 16, 3}));
  set_jpeg_size(jpeg, 65000, 65000);
  EXPECT_NE(decode_error(jpeg).find("pixels"), std::string::npos);
  // Under the pixel limit, but far fewer bits than the image has blocks: truncated or forged.
  for (uint16_t side : {4000, 9000, 12000}) {
    set_jpeg_size(jpeg, side, side);
    EXPECT_NE(decode_error(jpeg).find("cannot hold"), std::string::npos) << side;
  }
}

TEST(HostileImage, AnimatedWebpCanvasAndFrameCountAreBounded) {
  const Bytes small = animated_webp(3, 8, 8);
  EXPECT_EQ(decode_image(small.data(), small.size(), "ok").image.size(0), 3);
  // One canvas past the pixel limit, and a canvas under it whose frames together are too many.
  EXPECT_NE(decode_error(animated_webp(2, 16000, 16000)).find("pixels"), std::string::npos);
  const int side = 12000;  // 144 M pixels: one frame is accepted, five are not
  ASSERT_LT(uint64_t(side) * side, kMaxImagePixels);
  ASSERT_GT(uint64_t(side) * side * 5, kMaxVideoPixels);
  const Bytes many = animated_webp(5, side, side);
  EXPECT_LT(many.size(), 5000u);
  EXPECT_NE(decode_error(many).find("frame"), std::string::npos);
}

TEST(HostileImage, TruncatedAndCorruptFilesAreLoadErrors) {
  const Bytes png = read_file_bytes(testing::tiny_path("inputs/i2v_image.png"));
  const Bytes jpeg = jpeg_of(40, 24);
  const Bytes webp = animated_webp(2, 8, 8);
  std::mt19937 rng(11);
  for (const Bytes* file : {&png, &jpeg, &webp}) {
    for (size_t cut = 0; cut < file->size(); cut += 1 + file->size() / 64) {
      Bytes part(file->begin(), file->begin() + cut);
      try {
        decode_image(part.data(), part.size(), "cut");
      } catch (const LoadError&) {
      }
    }
    for (int trial = 0; trial < 64; ++trial) {  // random byte flips: decode or LoadError
      Bytes broken = *file;
      for (int k = 0; k < 4; ++k) broken[rng() % broken.size()] ^= uint8_t(1 + rng() % 255);
      try {
        decode_image(broken.data(), broken.size(), "flipped");
      } catch (const LoadError&) {
      }
    }
  }
}

TEST(HostileImage, OnlyRegularFilesAreOpened) {
  const fs::path fifo = scratch("image.png");
  fs::remove(fifo);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (int reader = 0; reader < 2; ++reader) {
    auto loading = std::async(std::launch::async, [&] {
      try {
        if (reader == 0) load_image(fifo.string());
        else load_video(fifo.string());
      } catch (const LoadError& e) {
        return std::string(e.what());
      }
      return std::string("no error");
    });
    if (loading.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
      if (fd >= 0) ::close(fd);
      FAIL() << "opening a FIFO blocked";
    }
    EXPECT_NE(loading.get().find("FIFO"), std::string::npos);
  }
  fs::remove(fifo);
  EXPECT_THROW(load_image(fs::temp_directory_path().string()), LoadError);
  EXPECT_THROW(load_image("/dev/zero"), LoadError);
  EXPECT_THROW(load_video("/dev/zero"), LoadError);
}

TEST(HostileVideo, PlaylistsThatReferenceOtherFilesAreNotOpened) {
  // An HLS playlist or concat script would make libavformat read other files (or URLs).
  const fs::path list = scratch("list.m3u8");
  std::ofstream(list) << "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n";
  EXPECT_THROW(load_video(list.string()), LoadError);
  const fs::path concat = scratch("list.txt");
  std::ofstream(concat) << "ffconcat version 1.0\nfile '/etc/passwd'\n";
  EXPECT_THROW(load_video(concat.string()), LoadError);
}

}  // namespace
}  // namespace wan::media
