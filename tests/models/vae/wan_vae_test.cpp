// Parity of WanVae with the official WanVAE (goldens/vae.safetensors, float32, CPU).
#include "models/vae/wan_vae.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "core/error.h"
#include "io/tensor_index.h"
#include "test_util.h"

namespace wan::models {
namespace {

using ::wan::testing::golden_tensor;
using ::wan::testing::tiny_path;

// The official component tolerance (manifest: atol 1e-4, float32).
constexpr double kAtol = 1e-4;

WanVae& tiny_vae() {
  static WanVae vae = load_wan_vae(tiny_path("weights/vae_tiny.pth"));
  return vae;
}

WanVaeConfig tiny_config() {
  WanVaeConfig c;
  c.dim = 16;
  return c;
}

TEST(WanVae, ConfigIsReadFromWeights) {
  const auto c = WanVaeConfig::from_weights(
      io::read_tensor_infos(tiny_path("weights/vae_tiny.pth")), "vae_tiny.pth");
  EXPECT_EQ(c.dim, 16);
  EXPECT_EQ(c.z_dim, 16);
  EXPECT_EQ(c.dim_mult, (std::vector<int64_t>{1, 2, 4, 4}));
  EXPECT_EQ(c.num_res_blocks, 2);
  EXPECT_EQ(c.temporal_downsample, (std::vector<bool>{false, true, true}));
}

TEST(WanVae, ExpectedTensorsMatchModuleAndCheckpoint) {
  const auto specs = wan_vae_expected_tensors(tiny_config());
  WanVae module(tiny_config());
  const auto params = module->named_parameters(/*recurse=*/true);
  ASSERT_EQ(specs.size(), params.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    EXPECT_EQ(specs[i].name, params[i].key());
    EXPECT_EQ(specs[i].shape, params[i].value().sizes().vec()) << specs[i].name;
  }
  const auto infos = io::read_tensor_infos(tiny_path("weights/vae_tiny.pth"));
  ASSERT_EQ(infos.size(), specs.size());
  std::map<std::string, std::vector<int64_t>> file;
  for (const auto& info : infos) file[info.name] = info.shape;
  for (const auto& spec : specs) EXPECT_EQ(file[spec.name], spec.shape) << spec.name;
}

TEST(WanVae, NormalisationConstantsAreBuffersMatchingOfficial) {
  auto& vae = tiny_vae();
  std::set<std::string> buffers;
  for (const auto& b : vae->named_buffers()) buffers.insert(b.key());
  EXPECT_TRUE(buffers.count("mean") && buffers.count("inv_std"));
  EXPECT_TRUE(vae->mean.equal(golden_tensor("vae", "scale.mean")));
  EXPECT_TRUE(vae->inv_std.equal(golden_tensor("vae", "scale.std").reciprocal()));
}

TEST(WanVae, EncodeVideoMatchesOfficialWithin1e4) {
  const auto latent = tiny_vae()->encode(golden_tensor("vae", "encode.video_in"));
  EXPECT_ALLCLOSE(latent, golden_tensor("vae", "encode.video_latent"), kAtol);
}

TEST(WanVae, EncodeImageMatchesOfficialWithin1e4) {
  const auto latent = tiny_vae()->encode(golden_tensor("vae", "encode.image_in"));
  EXPECT_ALLCLOSE(latent, golden_tensor("vae", "encode.image_latent"), kAtol);
}

TEST(WanVae, EncodeSmallVideoMatchesOfficialWithin1e4) {
  const auto latent = tiny_vae()->encode(golden_tensor("vae", "encode.video_small_in"));
  EXPECT_ALLCLOSE(latent, golden_tensor("vae", "encode.video_small_latent"), kAtol);
}

TEST(WanVae, EncodeUnscaledMatchesOfficialWithin1e4) {
  const auto mu = tiny_vae()->encode_unscaled(golden_tensor("vae", "encode.video_in"));
  EXPECT_ALLCLOSE(mu, golden_tensor("vae", "encode.video_latent_unscaled"), kAtol);
}

TEST(WanVae, DecodeVideoMatchesOfficialWithin1e4) {
  const auto video = tiny_vae()->decode(golden_tensor("vae", "decode.latent_in"));
  EXPECT_ALLCLOSE(video, golden_tensor("vae", "decode.video_out"), kAtol);
}

TEST(WanVae, DecodeImageMatchesOfficialWithin1e4) {
  const auto video = tiny_vae()->decode(golden_tensor("vae", "decode.latent1_in"));
  EXPECT_ALLCLOSE(video, golden_tensor("vae", "decode.image_out"), kAtol);
}

}  // namespace
}  // namespace wan::models
