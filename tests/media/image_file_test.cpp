// Still-image loading (ComfyUI LoadImage conventions), ImageToMask, the 8-bit conversion and the
// metadata helpers.
#include "media/image_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

extern "C" {
#include <webp/encode.h>
}

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "media/embedded_metadata.h"
#include "media/output_files.h"
#include "media/video_writer.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace wan::media;
using wan::testing::golden_tensor;
using wan::testing::tiny_path;

namespace {

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / ("wan_media_img_" + std::to_string(::getpid()) + "_" + name);
}

uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc = 0) {
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

// The official pipelines' image tensor: to_tensor(img).sub_(0.5).div_(0.5), [3, H, W].
at::Tensor as_wan_image(const at::Tensor& image_hwc) {
  return image_hwc.permute({2, 0, 1}).sub(0.5).div(0.5);
}

}  // namespace

TEST(LoadImage, RgbPngMatchesOfficialInputTensorExactly) {
  LoadedImage loaded = load_image(tiny_path("inputs/i2v_image.png"));
  ASSERT_EQ(loaded.image.sizes(), (at::IntArrayRef{1, 56, 72, 3}));
  ASSERT_EQ(loaded.mask.sizes(), (at::IntArrayRef{1, 56, 72}));
  EXPECT_FALSE(loaded.has_alpha);
  EXPECT_EQ(loaded.mask.abs().max().item<float>(), 0.0f);
  // The golden is what the official I2V got from this PNG; tolerance 0 (bit-exact).
  EXPECT_ALLCLOSE(as_wan_image(loaded.image[0]), golden_tensor("e2e_i2v", "input.image"), 0.0);
  // Known pixels (row, column) decoded independently: (0,0)=(0,0,190), (10,20)=(71,46,40).
  at::Tensor px = loaded.image[0].mul(255).round().to(at::kInt);
  EXPECT_EQ(px[0][0][2].item<int>(), 190);
  EXPECT_EQ(px[10][20][0].item<int>(), 71);
  EXPECT_EQ(px[10][20][1].item<int>(), 46);
  EXPECT_EQ(px[10][20][2].item<int>(), 40);
  EXPECT_EQ(px[55][71][0].item<int>(), 255);
}

TEST(LoadImage, GreyscalePngIsReplicatedToRgb) {
  LoadedImage loaded = load_image(tiny_path("inputs/vace_src_mask_00.png"));
  ASSERT_EQ(loaded.image.sizes(), (at::IntArrayRef{1, 64, 64, 3}));
  at::Tensor grey = loaded.image[0].select(2, 0);
  EXPECT_TRUE(at::equal(grey, loaded.image[0].select(2, 1)));
  EXPECT_TRUE(at::equal(grey, loaded.image[0].select(2, 2)));
  // The official VACE mask from this file is value / 255; tolerance 0.
  EXPECT_ALLCLOSE(grey, golden_tensor("e2e_vace", "input.src_mask")[0][0], 0.0);
  EXPECT_EQ(grey[32][32].item<float>(), 1.0f);
  EXPECT_EQ(grey[0][0].item<float>(), 0.0f);
  EXPECT_FALSE(loaded.has_alpha);
}

TEST(LoadImage, AlphaBecomesOneMinusAlphaMask) {
  // A lossless RGBA WebP with alpha 255 - 17 * x (alpha never 0, so RGB is kept exactly).
  const int w = 8, h = 4;
  std::vector<uint8_t> rgba(w * h * 4);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &rgba[(y * w + x) * 4];
      p[0] = 30 * x, p[1] = 60 * y, p[2] = 7, p[3] = 255 - 17 * x;
    }
  uint8_t* encoded = nullptr;
  size_t size = WebPEncodeLosslessRGBA(rgba.data(), w, h, w * 4, &encoded);
  ASSERT_GT(size, 0u);
  LoadedImage loaded = decode_image(encoded, size, "alpha.webp");
  WebPFree(encoded);
  EXPECT_TRUE(loaded.has_alpha);
  ASSERT_EQ(loaded.mask.sizes(), (at::IntArrayRef{1, h, w}));
  for (int x = 0; x < w; ++x) {
    EXPECT_FLOAT_EQ(loaded.mask[0][1][x].item<float>(), 1.0f - (255 - 17 * x) / 255.0f);
    EXPECT_FLOAT_EQ(loaded.image[0][1][x][0].item<float>(), (30 * x) / 255.0f);
  }
}

TEST(LoadImage, AppliesExifOrientation) {
  // i2v_image.png with an eXIf chunk saying "rotate 90 degrees clockwise" (orientation 6).
  std::vector<uint8_t> png = read_file_bytes(tiny_path("inputs/i2v_image.png"));
  std::vector<uint8_t> tiff = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0,   // one entry
                               0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0,  // 0x0112 SHORT 1 = 6
                               0, 0, 0, 0};
  std::vector<uint8_t> chunk = {0, 0, 0, static_cast<uint8_t>(tiff.size()), 'e', 'X', 'I', 'f'};
  chunk.insert(chunk.end(), tiff.begin(), tiff.end());
  uint32_t crc = crc32(chunk.data() + 4, chunk.size() - 4);
  for (int i = 3; i >= 0; --i) chunk.push_back((crc >> (8 * i)) & 0xFF);
  png.insert(png.begin() + 33, chunk.begin(), chunk.end());  // right after IHDR
  EXPECT_EQ(tiff_orientation(tiff.data(), tiff.size()), 6);

  LoadedImage rotated = decode_image(png.data(), png.size(), "rotated.png");
  ASSERT_EQ(rotated.image.sizes(), (at::IntArrayRef{1, 72, 56, 3}));
  at::Tensor original = load_image(tiny_path("inputs/i2v_image.png")).image[0];
  // Clockwise: the original top-left pixel ends top-right, bottom-left ends top-left.
  EXPECT_TRUE(at::equal(rotated.image[0][0][55], original[0][0]));
  EXPECT_TRUE(at::equal(rotated.image[0][0][0], original[55][0]));
  EXPECT_TRUE(at::equal(rotated.image[0][71][0], original[55][71]));
}

TEST(LoadImage, ErrorsNameTheFile) {
  fs::path bad = temp_file("not_an_image.png");
  std::ofstream(bad) << "hello";
  try {
    load_image(bad.string());
    FAIL() << "expected LoadError";
  } catch (const wan::LoadError& e) {
    EXPECT_NE(std::string(e.what()).find(bad.string()), std::string::npos) << e.what();
  }
  fs::remove(bad);
  EXPECT_THROW(load_image("/nonexistent/x.png"), wan::LoadError);
}

TEST(ImageToMask, PicksOneChannelAndRejectsAlphaOnRgb) {
  at::Tensor image = at::rand({2, 4, 5, 3});
  EXPECT_TRUE(at::equal(image_to_mask(image, "green"), image.select(3, 1)));
  EXPECT_EQ(image_to_mask(image, "blue").sizes(), (at::IntArrayRef{2, 4, 5}));
  EXPECT_THROW(image_to_mask(image, "alpha"), wan::ValidationError);
  EXPECT_THROW(image_to_mask(image, "luma"), wan::ValidationError);
}

TEST(ImageConversion, TruncatesLikeComfyUiSaveImage) {
  at::Tensor x = at::tensor({0.0f, 0.5f, 0.999f, 1.0f, 1.2f, -0.1f, 100.0f / 255.0f})
                     .reshape({1, 1, 7, 1})
                     .expand({1, 1, 7, 3});
  at::Tensor u = image_to_uint8(x, "test").select(3, 0).flatten();
  std::vector<int> expected = {0, 127, 254, 255, 255, 0, 100};  // clip(255x).astype(uint8)
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(u[i].item<uint8_t>(), expected[i]) << i;
  // Every 8-bit value survives a round trip.
  at::Tensor all = at::arange(256, at::kByte).reshape({1, 16, 16, 1}).expand({1, 16, 16, 3});
  EXPECT_TRUE(at::equal(image_to_uint8(uint8_to_image(all), "test"), all.contiguous()));
  at::Tensor nan = at::zeros({1, 2, 2, 3});
  nan[0][1][1][2] = NAN;
  EXPECT_THROW(image_to_uint8(nan, "test"), wan::ValidationError);
  EXPECT_THROW(image_to_uint8(at::zeros({1, 2, 2, 4}), "test"), wan::ValidationError);
}

TEST(EmbeddedMetadata, JsonTextMatchesPythonJsonDumps) {
  nlohmann::ordered_json value = {{"b", 1}, {"a", {1.5, "\xC3\xA9\n\"\\", true, nullptr, 1e-07, 3.0,
                                                   "\xF0\x9F\x98\x80\x7f"}}};
  // Expected text produced by CPython 3.11 json.dumps for the same object.
  EXPECT_EQ(comfy_json_dumps(value),
            R"({"b": 1, "a": [1.5, "\u00e9\n\"\\", true, null, 1e-07, 3.0, "\ud83d\ude00\u007f"]})");
}

TEST(EmbeddedMetadata, TiffAsciiTagsRoundTrip) {
  std::vector<uint8_t> tiff =
      build_tiff_ascii({{0x0110, "prompt:{\"1\": {}}"}, {0x010F, "workflow:{}"}, {0x010E, "ab"}});
  ASSERT_GE(tiff.size(), 8u);
  EXPECT_EQ(std::string(tiff.begin(), tiff.begin() + 4), std::string("II*\0", 4));
  std::vector<TiffAsciiTag> tags = parse_tiff_ascii(tiff.data(), tiff.size());
  ASSERT_EQ(tags.size(), 3u);
  EXPECT_EQ(tags[0].tag, 0x010E);  // sorted by tag, as TIFF requires
  EXPECT_EQ(tags[0].value, "ab");  // short values live inside the entry
  EXPECT_EQ(tags[1].value, "workflow:{}");
  EXPECT_EQ(tags[2].value, "prompt:{\"1\": {}}");
  // Truncated input never reads out of bounds.
  for (size_t n = 0; n < tiff.size(); ++n) parse_tiff_ascii(tiff.data(), n);
}

namespace wan::media {
namespace {

// The latent previews' JPEG encoder: what it writes decodes to the same size and nearly the same
// pixels (quality 95 on a smooth picture), and bad shapes or qualities are refused.
TEST(JpegEncoder, RoundTripsThroughTheDecoderCloseToTheInput) {
  const at::Tensor ramp = at::arange(0, 48, at::kFloat).div(47).mul(255);
  const at::Tensor rgb8 =
      at::stack({ramp.view({1, 48}).expand({32, 48}), ramp.flip(0).view({1, 48}).expand({32, 48}),
                 at::full({32, 48}, 128.0)},
                -1)
          .to(at::kByte);
  const std::vector<uint8_t> jpeg = encode_jpeg(rgb8, 95, "test");
  ASSERT_GT(jpeg.size(), 4u);
  EXPECT_EQ(jpeg[0], 0xFF);
  EXPECT_EQ(jpeg[1], 0xD8);
  const LoadedImage back = decode_image(jpeg.data(), jpeg.size(), "test");
  ASSERT_EQ(back.image.sizes(), (std::vector<int64_t>{1, 32, 48, 3}));
  const double mean_error =
      (back.image[0] * 255 - rgb8.to(at::kFloat)).abs().mean().item<double>();
  EXPECT_LT(mean_error, 2.0);
  EXPECT_THROW(encode_jpeg(rgb8, 0, "test"), ValidationError);
  EXPECT_THROW(encode_jpeg(rgb8.to(at::kFloat), 95, "test"), ValidationError);
  EXPECT_THROW(encode_jpeg(rgb8.narrow(2, 0, 2), 95, "test"), ValidationError);
}

}  // namespace
}  // namespace wan::media

// The planner sizes image inputs from their headers: PNG, JPEG and WebP give the frames and
// pixels load_image decodes to, and a file that is not an image is the same LoadError.
TEST(ProbeImage, HeadersGiveTheDecodedSize) {
  at::manual_seed(3);
  const at::Tensor rgb8 = (at::rand({37, 53, 3}) * 255).to(at::kByte);
  const fs::path png = temp_file("probe.png"), jpeg = temp_file("probe.jpg"),
                 webp = temp_file("probe.webp");
  {
    const auto bytes = encode_rgba_png(at::cat({rgb8, at::full({37, 53, 1}, 255, at::kByte)}, 2), "test");
    std::ofstream(png, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    const auto j = encode_jpeg(rgb8, 90, "test");
    std::ofstream(jpeg, std::ios::binary).write(reinterpret_cast<const char*>(j.data()), j.size());
    std::vector<uint8_t> rgba(37 * 53 * 4, 255);
    uint8_t* encoded = nullptr;
    const size_t size = WebPEncodeLosslessRGBA(rgba.data(), 53, 37, 53 * 4, &encoded);
    std::ofstream(webp, std::ios::binary).write(reinterpret_cast<const char*>(encoded), size);
    WebPFree(encoded);
  }
  // A JPEG whose frame header comes after 64 KiB of comment: the probe reads past its header read.
  const fs::path late_jpeg = temp_file("probe_late.jpg");
  {
    std::vector<uint8_t> j = encode_jpeg(rgb8, 90, "test");
    std::vector<uint8_t> comment = {0xFF, 0xFE, 0xFF, 0xFF};  // COM, length 65535
    comment.resize(2 + 65535, 'x');
    j.insert(j.begin() + 2, comment.begin(), comment.end());
    std::ofstream(late_jpeg, std::ios::binary).write(reinterpret_cast<const char*>(j.data()), j.size());
  }
  for (const fs::path& file :
       {png, jpeg, late_jpeg, webp, fs::path(tiny_path("inputs/i2v_image.png"))}) {
    SCOPED_TRACE(file.string());
    const ImageExtent extent = probe_image(file.string());
    const at::Tensor image = load_image(file.string()).image;
    EXPECT_EQ(extent.frames, image.size(0));
    EXPECT_EQ(extent.height * extent.width, image.size(1) * image.size(2));
  }
  const fs::path bad = temp_file("probe_bad.png");
  std::ofstream(bad) << "hello";
  EXPECT_THROW(probe_image(bad.string()), wan::LoadError);
  for (const auto& f : {png, jpeg, late_jpeg, webp, bad}) fs::remove(f);
}
