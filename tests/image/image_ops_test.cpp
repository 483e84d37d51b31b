// Image loading and the conversions the conditioning stages use, against the tensors the
// official pipelines produced from the same PNGs.
#include "image/image_ops.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "media/image_file.h"
#include "test_util.h"

namespace wan::image {
namespace {

using wan::testing::golden_tensor;
using wan::testing::tiny_path;

// One still image: frame 0 of what the media layer decodes ([H, W, 3] and [H, W]).
media::LoadedImage still(media::LoadedImage loaded) {
  loaded.image = loaded.image[0];
  loaded.mask = loaded.mask[0];
  return loaded;
}
media::LoadedImage load_image(const std::string& path) { return still(media::load_image(path)); }
media::LoadedImage decode_image(const unsigned char* data, size_t size, const std::string& origin) {
  return still(media::decode_image(data, size, origin));
}

TEST(ImageOps, LoadsPngAsHwcInUnitRange) {
  const auto loaded = load_image(tiny_path("inputs/clip_image.png"));  // 72 x 56 RGB
  EXPECT_EQ(loaded.image.sizes(), at::IntArrayRef({56, 72, 3}));
  EXPECT_EQ(loaded.image.scalar_type(), at::kFloat);
  EXPECT_GE(loaded.image.min().item<float>(), 0.0f);
  EXPECT_LE(loaded.image.max().item<float>(), 1.0f);
  // Every value is a multiple of 1/255.
  const auto scaled = loaded.image * 255.0;
  EXPECT_TRUE(at::allclose(scaled, scaled.round(), 0, 1e-4));
  EXPECT_FALSE(loaded.has_alpha);
  EXPECT_EQ(loaded.mask.sizes(), at::IntArrayRef({56, 72}));
  EXPECT_EQ(loaded.mask.abs().max().item<float>(), 0.0f);
}

TEST(ImageOps, ToWanImageMatchesOfficialExactly) {
  // goldens: to_tensor(img).sub_(0.5).div_(0.5) of the same PNGs; required bit for bit.
  EXPECT_TRUE(at::equal(to_wan_image(load_image(tiny_path("inputs/clip_image.png")).image),
                        golden_tensor("clip", "image_in")));
  EXPECT_TRUE(at::equal(to_wan_image(load_image(tiny_path("inputs/clip_image2.png")).image),
                        golden_tensor("clip", "image2_in")));
  EXPECT_TRUE(at::equal(to_wan_image(load_image(tiny_path("inputs/i2v_image.png")).image),
                        golden_tensor("e2e_i2v", "input.image")));
  EXPECT_TRUE(at::equal(to_wan_image(load_image(tiny_path("inputs/flf2v_last.png")).image),
                        golden_tensor("e2e_flf2v", "input.last_frame")));
}

TEST(ImageOps, ToWanImageAcceptsBatchAndRejectsChw) {
  const auto image = load_image(tiny_path("inputs/clip_image.png")).image;
  const auto batch = to_wan_image(at::stack({image, image}));
  EXPECT_EQ(batch.sizes(), at::IntArrayRef({2, 3, 56, 72}));
  EXPECT_TRUE(at::equal(batch[1], to_wan_image(image)));
  EXPECT_THROW(to_wan_image(at::zeros({3, 56, 72})), ValidationError);
}

TEST(ImageOps, FromWanImageInvertsToWanImage) {
  const auto image = load_image(tiny_path("inputs/clip_image.png")).image;
  EXPECT_ALLCLOSE(from_wan_image(to_wan_image(image)), image, 1e-7);
  const auto video = at::rand({3, 2, 4, 5}) * 2 - 1;
  EXPECT_EQ(from_wan_image(video).sizes(), at::IntArrayRef({2, 4, 5, 3}));
}

TEST(ImageOps, ResizeBicubicMatchesOfficialI2vConditioningFrame) {
  // Official I2V: F.interpolate(img[None], size=(h, w), mode='bicubic') -> 48 x 64 here. The
  // goldens were recorded with an older torch whose float32 bicubic kernel rounds differently:
  // torch 2.15's own F.interpolate is 2.2e-6 from them, so 5e-6 bounds the kernels' difference.
  constexpr double kBicubicAcrossTorchVersions = 5e-6;
  const auto image = golden_tensor("e2e_i2v", "input.image");
  const auto resized = resize_bicubic(image, 48, 64);
  EXPECT_ALLCLOSE(resized.unsqueeze(1), golden_tensor("e2e_i2v", "vae_encode.0.in.frame0"),
                  kBicubicAcrossTorchVersions);
  const auto first = resize_bicubic(golden_tensor("e2e_flf2v", "input.first_frame"), 32, 32);
  EXPECT_ALLCLOSE(first.unsqueeze(1), golden_tensor("e2e_flf2v", "vae_encode.0.in.frame0"),
                  kBicubicAcrossTorchVersions);
  const auto last = resize_bicubic(golden_tensor("e2e_flf2v", "input.last_frame"), 32, 32);
  EXPECT_ALLCLOSE(last.unsqueeze(1), golden_tensor("e2e_flf2v", "vae_encode.0.in.frame_last"),
                  kBicubicAcrossTorchVersions);
  EXPECT_THROW(resize_bicubic(image, 0, 64), ValidationError);
}

TEST(ImageOps, CenterCropFollowsTorchvision) {
  const auto x = at::arange(5 * 7, at::kFloat).view({1, 5, 7});
  // Crop 2 x 4 from 5 x 7: top = round(1.5) = 2 (half to even), left = round(1.5) = 2.
  EXPECT_TRUE(at::equal(center_crop(x, 2, 4), x.narrow(1, 2, 2).narrow(2, 2, 4)));
  // Crop 3 x 3: top = round(1.0) = 1, left = round(2.0) = 2.
  EXPECT_TRUE(at::equal(center_crop(x, 3, 3), x.narrow(1, 1, 3).narrow(2, 2, 3)));
  // Crop 4 x 2 from 5 x 7: top = round(0.5) = 0, left = round(2.5) = 2.
  EXPECT_TRUE(at::equal(center_crop(x, 4, 2), x.narrow(1, 0, 4).narrow(2, 2, 2)));
  // Larger than the image: zero padding, left/top floor(diff / 2), right/bottom ceil.
  const auto padded = center_crop(x, 8, 8);
  EXPECT_EQ(padded.sizes(), at::IntArrayRef({1, 8, 8}));
  EXPECT_TRUE(at::equal(padded.narrow(1, 1, 5).narrow(2, 0, 7), x));
  EXPECT_EQ(padded[0][0].abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(padded.select(2, 7).abs().sum().item<float>(), 0.0f);
}

TEST(ImageOps, AlphaBecomesComfyMask) {
  // Smallest valid RGBA PNG: 1 x 1 pixel (10, 20, 30, alpha 64), written byte by byte.
  const unsigned char png[] = {
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
      0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
      0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78,
      0x9c, 0x63, 0xe0, 0x12, 0x91, 0x73, 0x00, 0x00, 0x00, 0xe5, 0x00, 0x7d, 0x08, 0x00,
      0xd8, 0x22, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
  const auto loaded = decode_image(png, sizeof(png), "rgba.png");
  ASSERT_TRUE(loaded.has_alpha);
  EXPECT_EQ(loaded.image.sizes(), at::IntArrayRef({1, 1, 3}));
  EXPECT_FLOAT_EQ(loaded.image[0][0][0].item<float>(), 10.0f / 255.0f);
  EXPECT_FLOAT_EQ(loaded.image[0][0][2].item<float>(), 30.0f / 255.0f);
  EXPECT_FLOAT_EQ(loaded.mask[0][0].item<float>(), 1.0f - 64.0f / 255.0f);
}

TEST(ImageOps, UnreadableFileIsLoadError) {
  EXPECT_THROW(load_image(tiny_path("inputs/no_such_image.png")), LoadError);
  const unsigned char junk[] = {1, 2, 3, 4};
  EXPECT_THROW(decode_image(junk, sizeof(junk), "junk.png"), LoadError);
}

}  // namespace
}  // namespace wan::image
