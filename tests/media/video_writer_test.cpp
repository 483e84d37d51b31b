// Video writers and readers: round trips through PNG frames, animated WebP and H.264 MP4, the
// embedded metadata of each format, SaveVideo naming, failures that leave nothing, LoadVideo.
#include "media/tensor_file.h"
#include "media/video_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

extern "C" {
#include <libavformat/avformat.h>
#include <png.h>
#include <webp/demux.h>
}

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "core/error.h"
#include "io/safetensors.h"
#include "media/image_file.h"
#include "media/video_file.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace wan::media;
using wan::testing::golden_tensor;
using wan::testing::tiny_path;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("wan_media_video_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

std::set<std::string> entries(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

// A synthetic video [F, H, W, 3] of smooth moving gradients whose values are exact multiples of
// 1/255, so lossless formats must give it back bit for bit.
at::Tensor gradient_video(int64_t frames, int64_t height, int64_t width) {
  at::Tensor f = at::arange(frames, at::kFloat).view({frames, 1, 1});
  at::Tensor y = at::arange(height, at::kFloat).view({1, height, 1});
  at::Tensor x = at::arange(width, at::kFloat).view({1, 1, width});
  at::Tensor zero = at::zeros({frames, height, width});
  at::Tensor r = (zero + x * 3 + f * 5).remainder(256);
  at::Tensor g = (zero + y * 4 + f * 3).remainder(256);
  at::Tensor b = (zero + x * 2 + y * 2 + 40).remainder(256);
  return at::stack({r, g, b}, -1).round().div(255.0).contiguous();
}

OutputMetadata sample_metadata() {
  OutputMetadata m;
  m.prompt = comfy_json_dumps({{"3", {{"class_type", "Sample"}, {"inputs", {{"seed", 42}}}}}});
  m.extra.emplace_back("workflow", comfy_json_dumps({{"nodes", nlohmann::ordered_json::array()},
                                                     {"version", 0.4}}));
  return m;
}

double psnr(const at::Tensor& a, const at::Tensor& b) {
  double mse = (a - b).pow(2).mean().item<double>();
  return 10.0 * std::log10(1.0 / mse);
}

std::map<std::string, std::string> png_text_chunks(const std::string& path) {
  std::map<std::string, std::string> out;
  FILE* fp = std::fopen(path.c_str(), "rb");
  if (!fp) return out;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png)) == 0) {
    png_init_io(png, fp);
    png_read_info(png, info);
    png_textp texts = nullptr;
    int count = png_get_text(png, info, &texts, nullptr);
    for (int i = 0; i < count; ++i) {
      EXPECT_EQ(texts[i].compression, PNG_TEXT_COMPRESSION_NONE) << "expected tEXt";
      out[texts[i].key] = std::string(texts[i].text, texts[i].text_length);
    }
  }
  png_destroy_read_struct(&png, &info, nullptr);
  std::fclose(fp);
  return out;
}

}  // namespace

TEST(SavePngFrames, RoundTripIsExactWithPromptAndWorkflowText) {
  TempDir dir;
  at::Tensor video = gradient_video(5, 48, 64);
  OutputMetadata meta = sample_metadata();
  save_png_frames(dir / "frames", video, meta);
  EXPECT_EQ(entries(dir.path), std::set<std::string>{"frames"});
  EXPECT_EQ(entries(dir.path / "frames").size(), 5u);
  // Lossless: tolerance 0.
  EXPECT_ALLCLOSE(load_video(dir / "frames"), video, 0.0);

  auto texts = png_text_chunks(dir / "frames/frame_00003.png");
  EXPECT_EQ(texts["prompt"], *meta.prompt);
  EXPECT_EQ(texts["workflow"], meta.extra[0].second);
  // The chunks come before the image data, as PIL writes them.
  std::vector<uint8_t> bytes = read_file_bytes(dir / "frames/frame_00000.png");
  std::string raw(bytes.begin(), bytes.end());
  EXPECT_LT(raw.find(std::string("tEXtprompt\0", 11)), raw.find("IDAT"));
  EXPECT_EQ(read_embedded_metadata(dir / "frames/frame_00000.png").find("workflow"),
            meta.extra[0].second);
}

TEST(SaveWebp, LosslessRoundTripIsExactWithExifMetadata) {
  TempDir dir;
  at::Tensor video = gradient_video(6, 48, 64);
  OutputMetadata meta = sample_metadata();
  save_webp(dir / "clip.webp", video, 16.0, meta);
  EXPECT_EQ(entries(dir.path), std::set<std::string>{"clip.webp"});
  EXPECT_ALLCLOSE(load_video(dir / "clip.webp"), video, 0.0);  // lossless (ComfyUI's default)
  EXPECT_ALLCLOSE(load_video(dir / "clip.webp", 4), video.slice(0, 0, 4), 0.0);

  std::vector<uint8_t> bytes = read_file_bytes(dir / "clip.webp");
  WebPData data{bytes.data(), bytes.size()};
  WebPDemuxer* demux = WebPDemux(&data);
  ASSERT_NE(demux, nullptr);
  EXPECT_EQ(WebPDemuxGetI(demux, WEBP_FF_FRAME_COUNT), 6u);
  WebPIterator frame;
  ASSERT_TRUE(WebPDemuxGetFrame(demux, 1, &frame));
  EXPECT_EQ(frame.duration, 62);  // int(1000 / 16) ms, as PIL gets it from ComfyUI
  WebPDemuxReleaseIterator(&frame);
  WebPChunkIterator chunk;
  ASSERT_TRUE(WebPDemuxGetChunk(demux, "EXIF", 1, &chunk));
  std::vector<TiffAsciiTag> tags = parse_tiff_ascii(chunk.chunk.bytes, chunk.chunk.size);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(chunk.chunk.bytes), 4), std::string("II*\0", 4));
  WebPDemuxReleaseChunkIterator(&chunk);
  WebPDemuxDelete(demux);
  ASSERT_EQ(tags.size(), 2u);
  EXPECT_EQ(tags[0].tag, 0x010F);  // Make: the first extra_pnginfo entry
  EXPECT_EQ(tags[0].value, "workflow:" + meta.extra[0].second);
  EXPECT_EQ(tags[1].tag, 0x0110);  // Model: the prompt
  EXPECT_EQ(tags[1].value, "prompt:" + *meta.prompt);
  OutputMetadata back = read_embedded_metadata(dir / "clip.webp");
  EXPECT_EQ(back.prompt, meta.prompt);
  EXPECT_EQ(back.extra, meta.extra);
}

TEST(SaveWebp, LossyRoundTripWithinTolerance) {
  TempDir dir;
  at::Tensor video = gradient_video(3, 48, 64);
  WebpOptions lossy;
  lossy.lossless = false;
  lossy.quality = 90;
  save_webp(dir / "lossy.webp", video, 8.0, {}, lossy);
  at::Tensor back = load_video(dir / "lossy.webp");
  ASSERT_EQ(back.sizes(), video.sizes());
  double p = psnr(back, video);
  std::cout << "lossy WebP q90 PSNR " << p << " dB\n";
  EXPECT_GE(p, 30.0);  // stated tolerance: PSNR >= 30 dB at quality 90
}

TEST(SaveMp4, RoundTripWithinPsnrAndCarriesMetadataTags) {
  TempDir dir;
  at::Tensor video = gradient_video(9, 48, 64);
  OutputMetadata meta = sample_metadata();
  save_mp4(dir / "clip.mp4", video, 16.0, meta);
  EXPECT_EQ(entries(dir.path), std::set<std::string>{"clip.mp4"});
  at::Tensor back = load_video(dir / "clip.mp4");
  ASSERT_EQ(back.sizes(), video.sizes());
  double p = psnr(back, video);
  std::cout << "H.264 CRF 23 PSNR " << p << " dB\n";
  EXPECT_GE(p, 30.0);  // stated tolerance: PSNR >= 30 dB
  EXPECT_EQ(load_video(dir / "clip.mp4", 3).size(0), 3);
  // The planner's view of the file, from the container without decoding: what load_video gave.
  const auto extent = probe_video(dir / "clip.mp4");
  ASSERT_TRUE(extent.has_value());
  EXPECT_TRUE(extent->video_file);
  EXPECT_EQ(extent->frames, 9);
  EXPECT_EQ(extent->height, 48);
  EXPECT_EQ(extent->width, 64);
  EXPECT_EQ(probe_video(dir / "clip.mp4", 3)->frames, 3);

  AVFormatContext* fmt = nullptr;
  ASSERT_EQ(avformat_open_input(&fmt, (dir / "clip.mp4").c_str(), nullptr, nullptr), 0);
  ASSERT_GE(avformat_find_stream_info(fmt, nullptr), 0);
  const AVDictionaryEntry* prompt = av_dict_get(fmt->metadata, "prompt", nullptr, 0);
  const AVDictionaryEntry* workflow = av_dict_get(fmt->metadata, "workflow", nullptr, 0);
  ASSERT_NE(prompt, nullptr);
  ASSERT_NE(workflow, nullptr);
  EXPECT_EQ(std::string(prompt->value), *meta.prompt);
  EXPECT_EQ(std::string(workflow->value), meta.extra[0].second);
  const AVCodecParameters* par = fmt->streams[0]->codecpar;
  EXPECT_EQ(par->codec_id, AV_CODEC_ID_H264);
  EXPECT_EQ(par->format, AV_PIX_FMT_YUV420P);
  EXPECT_EQ(par->color_space, AVCOL_SPC_BT709);
  EXPECT_EQ(av_q2d(fmt->streams[0]->avg_frame_rate), 16.0);
  avformat_close_input(&fmt);
  EXPECT_EQ(read_embedded_metadata(dir / "clip.mp4").prompt, meta.prompt);
}

TEST(SaveMp4, OddSizeIsRejectedBeforeWritingAnything) {
  TempDir dir;
  EXPECT_THROW(save_mp4(dir / "odd.mp4", gradient_video(2, 48, 63), 16.0, {}), wan::ValidationError);
  EXPECT_THROW(save_video(dir.path.string(), "wan", VideoFormat::kMp4, gradient_video(2, 47, 64),
                          16.0, {}),
               wan::ValidationError);
  EXPECT_TRUE(entries(dir.path).empty());
}

TEST(SaveVideo, CounterNamingAcrossFormatsNeverOverwrites) {
  TempDir dir;
  at::Tensor video = gradient_video(2, 16, 16);
  SavedOutput a = save_video(dir.path.string(), "clips/wan", parse_video_format("webp"), video, 16.0, {});
  SavedOutput b = save_video(dir.path.string(), "clips/wan", parse_video_format("mp4"), video, 16.0, {});
  SavedOutput c = save_video(dir.path.string(), "clips/wan", parse_video_format("png"), video, 16.0, {});
  SavedOutput d = save_video(dir.path.string(), "clips/wan", VideoFormat::kWebp, video, 16.0, {});
  EXPECT_EQ(a.filename, "wan_00001_.webp");
  EXPECT_EQ(b.filename, "wan_00002_.mp4");
  EXPECT_EQ(c.filename, "wan_00003_");
  EXPECT_EQ(d.filename, "wan_00004_.webp");
  EXPECT_EQ(a.subfolder, "clips");
  EXPECT_EQ(entries(dir.path / "clips"),
            (std::set<std::string>{"wan_00001_.webp", "wan_00002_.mp4", "wan_00003_", "wan_00004_.webp"}));
  EXPECT_ALLCLOSE(load_video(c.path), video, 0.0);
  EXPECT_THROW(parse_video_format("gif"), wan::ValidationError);
}

TEST(SaveVideo, FailureMidWriteLeavesNoFile) {
  TempDir dir;
  at::Tensor video = gradient_video(4, 16, 16);
  auto cancel_at_2 = [](int64_t done, int64_t) {
    if (done == 2) throw wan::Cancelled();
  };
  for (VideoFormat format : {VideoFormat::kWebp, VideoFormat::kMp4, VideoFormat::kPng}) {
    EXPECT_THROW(save_video(dir.path.string(), "wan", format, video, 16.0, sample_metadata(), cancel_at_2),
                 wan::Cancelled);
  }
  EXPECT_THROW(save_webp(dir / "a.webp", video, 16.0, {}, {}, cancel_at_2), wan::Cancelled);
  EXPECT_THROW(save_mp4(dir / "a.mp4", video, 16.0, {}, cancel_at_2), wan::Cancelled);
  EXPECT_THROW(save_png_frames(dir / "frames", video, {}, cancel_at_2), wan::Cancelled);
  EXPECT_TRUE(entries(dir.path).empty());  // no outputs and no temporaries
  // An unwritable destination (a file where the folder should be) fails the same clean way.
  std::ofstream(dir / "blocker") << "x";
  EXPECT_THROW(save_video(dir / "blocker", "wan", VideoFormat::kWebp, video, 16.0, {}), wan::Error);
  EXPECT_THROW(save_webp(dir / "blocker/a.webp", video, 16.0, {}), wan::Error);
  EXPECT_EQ(entries(dir.path), std::set<std::string>{"blocker"});
  EXPECT_THROW(save_webp(dir / "a.webp", video, 0.0, {}), wan::ValidationError);
}

TEST(SaveTensor, WritesFloat32SafetensorsUnderKeyTensor) {
  TempDir dir;
  at::Tensor latent = at::randn({16, 3, 4, 6}).to(at::kBFloat16);
  SavedOutput saved = save_tensor(dir.path.string(), "latents/wan", latent);
  EXPECT_EQ(saved.filename, "wan_00001_.safetensors");
  wan::io::TensorMap back = wan::io::load_safetensors(saved.path);
  ASSERT_EQ(back.count("tensor"), 1u);
  EXPECT_EQ(back["tensor"].scalar_type(), at::kFloat);
  EXPECT_ALLCLOSE(back["tensor"], latent.to(at::kFloat), 0.0);
  EXPECT_EQ(save_tensor(dir.path.string(), "latents/wan", latent).filename, "wan_00002_.safetensors");
  save_tensor_file(dir / "x.safetensors", gradient_video(2, 4, 4));
  EXPECT_EQ(wan::io::load_safetensors(dir / "x.safetensors").at("tensor").sizes(),
            (at::IntArrayRef{2, 4, 4, 3}));
  EXPECT_THROW(save_tensor(dir.path.string(), "wan", at::ones({2}, at::kLong)), wan::ValidationError);
}

TEST(LoadVideo, GlobFolderAndFrameLoadCap) {
  // The official VACE input video came from these PNGs; tolerance 0.
  at::Tensor all = load_video(tiny_path("inputs/vace_src_frame_*.png"));
  ASSERT_EQ(all.sizes(), (at::IntArrayRef{9, 64, 64, 3}));
  EXPECT_ALLCLOSE(all.permute({3, 0, 1, 2}).sub(0.5).div(0.5),
                  golden_tensor("e2e_vace", "input.src_video"), 0.0);
  at::Tensor capped = load_video(tiny_path("inputs/vace_src_frame_*.png"), 4);
  ASSERT_EQ(capped.size(0), 4);
  EXPECT_TRUE(at::equal(capped, all.slice(0, 0, 4)));

  TempDir dir;
  fs::create_directories(dir.path / "frames");
  for (int i = 4; i >= 0; --i) {  // copy in reverse to prove sorting by name
    std::string name = "vae_video_small_0" + std::to_string(i) + ".png";
    fs::copy_file(tiny_path("inputs/" + name), dir.path / "frames" / name);
  }
  std::ofstream(dir / "frames/notes.txt") << "not a frame";
  std::ofstream(dir / "frames/.hidden.png") << "not a frame";
  at::Tensor folder = load_video(dir / "frames");
  EXPECT_TRUE(at::equal(folder, load_video(tiny_path("inputs/vae_video_small_*.png"))));
  EXPECT_TRUE(at::equal(folder[2], load_image(tiny_path("inputs/vae_video_small_02.png")).image[0]));
  EXPECT_EQ(load_video(dir / "frames", 2).size(0), 2);

  // Frames of another size: the error names the first odd file.
  fs::copy_file(tiny_path("inputs/vace_ref.png"), dir.path / "frames" / "vae_video_small_02b.png");
  try {
    load_video(dir / "frames");
    FAIL() << "expected LoadError";
  } catch (const wan::LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("vae_video_small_02b.png"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_video(dir / "frames", -1), wan::ValidationError);
  EXPECT_THROW(load_video(dir / "nothing_*.png"), wan::LoadError);
  EXPECT_THROW(load_video(dir / "missing.mp4"), wan::LoadError);
}
