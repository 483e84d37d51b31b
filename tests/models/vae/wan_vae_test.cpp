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
constexpr double kAtol = 1e-5;  // measured at most 2.3e-6

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

TEST(WanVae, EncodeVideoMatchesOfficialWithin1e5) {
  const auto latent = tiny_vae()->encode(golden_tensor("vae", "encode.video_in"));
  EXPECT_ALLCLOSE(latent, golden_tensor("vae", "encode.video_latent"), kAtol);
}

TEST(WanVae, EncodeImageMatchesOfficialWithin1e5) {
  const auto latent = tiny_vae()->encode(golden_tensor("vae", "encode.image_in"));
  EXPECT_ALLCLOSE(latent, golden_tensor("vae", "encode.image_latent"), kAtol);
}

TEST(WanVae, EncodeSmallVideoMatchesOfficialWithin1e5) {
  const auto latent = tiny_vae()->encode(golden_tensor("vae", "encode.video_small_in"));
  EXPECT_ALLCLOSE(latent, golden_tensor("vae", "encode.video_small_latent"), kAtol);
}

TEST(WanVae, EncodeUnscaledMatchesOfficialWithin1e5) {
  const auto mu = tiny_vae()->encode_unscaled(golden_tensor("vae", "encode.video_in"));
  EXPECT_ALLCLOSE(mu, golden_tensor("vae", "encode.video_latent_unscaled"), kAtol);
}

TEST(WanVae, DecodeVideoMatchesOfficialWithin1e5) {
  const auto video = tiny_vae()->decode(golden_tensor("vae", "decode.latent_in"));
  EXPECT_ALLCLOSE(video, golden_tensor("vae", "decode.video_out"), kAtol);
}

TEST(WanVae, DecodeImageMatchesOfficialWithin1e5) {
  const auto video = tiny_vae()->decode(golden_tensor("vae", "decode.latent1_in"));
  EXPECT_ALLCLOSE(video, golden_tensor("vae", "decode.image_out"), kAtol);
}


// Wan2.1_VAE.pth holds 194 float32 tensors, 126,892,531 values (counted from the official
// WanVAE_ with the _video_vae configuration): 507,570,124 bytes of tensor data.
TEST(WanVae, OfficialPresetMatchesWan21VaeCheckpointSize) {
  const auto specs = wan_vae_expected_tensors(WanVaeConfig::official());
  int64_t numel = 0;
  for (const auto& s : specs) numel += s.numel();
  EXPECT_EQ(specs.size(), 194u);
  EXPECT_EQ(numel, 126892531);
  EXPECT_EQ(numel * 4, 507570124);
}

TEST(WanVae, ChunkingDoesNotChangeTheResult) {
  const auto latent = golden_tensor("vae", "decode.latent_in");
  const auto whole = tiny_vae()->decode(latent, VaeRunOptions().latent_frames_per_chunk(3));
  std::vector<int> progress;
  const auto per_frame = tiny_vae()->decode(
      latent, VaeRunOptions().latent_frames_per_chunk(1).progress(
                  [&](int done, int total) { progress.push_back(done * 10 + total); }));
  EXPECT_ALLCLOSE(per_frame, whole, 1e-6);
  EXPECT_EQ(progress, (std::vector<int>{13, 23, 33}));
  const auto video = golden_tensor("vae", "encode.video_in");
  EXPECT_ALLCLOSE(tiny_vae()->encode(video, VaeRunOptions().latent_frames_per_chunk(1)),
                  tiny_vae()->encode(video, VaeRunOptions().latent_frames_per_chunk(3)), 1e-6);
}

// The causal 3-D convolution runs as one 2-D convolution per temporal tap and frame; it must
// equal LibTorch's conv3d over the left-padded sequence (tolerance 1e-5, float32).
TEST(CausalConv3d, TapDecompositionEqualsConv3dWithin1e5) {
  auto& vae = tiny_vae();
  vae::CausalConv3d conv(vae::CausalConv3dOptions(64, 64, {3, 3, 3}).padding({1, 1, 1}));
  const auto params = vae->named_parameters();
  conv->weight.set_data(params["decoder.upsamples.0.residual.2.weight"].clone());
  conv->bias.set_data(params["decoder.upsamples.0.residual.2.bias"].clone());
  torch::manual_seed(3);
  const auto x = torch::randn({1, 64, 5, 8, 8});  // official layout [B, C, T, H, W]
  const auto expected =
      at::conv3d(at::constant_pad_nd(x, {1, 1, 1, 1, 2, 0}), conv->weight, conv->bias);
  c10::InferenceMode guard;
  vae::CausalSlot slot;
  const auto frames = x[0].permute({1, 0, 2, 3}).contiguous();  // [T, C, H, W]
  const auto got = conv->forward(frames.clone(), slot, true);
  EXPECT_ALLCLOSE(got.permute({1, 0, 2, 3}).unsqueeze(0), expected, 1e-5);
  // In place over its input gives the same frames.
  vae::CausalSlot slot2;
  const auto in_place = conv->forward(frames.clone(), slot2, true, vae::ConvTarget::kInPlace);
  EXPECT_ALLCLOSE(in_place, got, 0.0);
  // The cache holds the last two input frames.
  EXPECT_TRUE(slot.frames.equal(frames.narrow(0, 3, 2)));
}

// A small change of one weight must move the outputs well past the parity tolerance, so the
// parity tests above cannot pass with a wrong weight.
TEST(WanVae, PerturbedWeightBreaksParity) {
  auto vae = load_wan_vae(tiny_path("weights/vae_tiny.pth"));
  auto params = vae->named_parameters();
  {
    at::NoGradGuard no_grad;
    params["decoder.upsamples.12.residual.6.weight"].mul_(1.01);
    params["encoder.downsamples.6.residual.2.weight"].mul_(1.01);
  }
  const auto video = vae->decode(golden_tensor("vae", "decode.latent_in"));
  const auto latent = vae->encode(golden_tensor("vae", "encode.video_in"));
  const double decode_err =
      (video - golden_tensor("vae", "decode.video_out")).abs().max().item<double>();
  const double encode_err =
      (latent - golden_tensor("vae", "encode.video_latent")).abs().max().item<double>();
  EXPECT_GT(decode_err, 10 * kAtol);
  EXPECT_GT(encode_err, 10 * kAtol);
}

// bf16 weights and activations (normalisation in float32): the error against the float32
// goldens is measured and bounded (docs/vae.md records the values).
TEST(WanVae, Bf16PathRunsWithinMeasuredTolerance) {
  auto vae = load_wan_vae(tiny_path("weights/vae_tiny.pth"), at::kBFloat16);
  EXPECT_EQ(vae->dtype(), at::kBFloat16);
  EXPECT_EQ(vae->mean.scalar_type(), at::kFloat);
  const auto video = vae->decode(golden_tensor("vae", "decode.latent_in"));
  const auto latent = vae->encode(golden_tensor("vae", "encode.video_in"));
  EXPECT_EQ(video.scalar_type(), at::kFloat);
  const double decode_err =
      (video - golden_tensor("vae", "decode.video_out")).abs().max().item<double>();
  const double encode_err =
      (latent - golden_tensor("vae", "encode.video_latent")).abs().max().item<double>();
  std::printf("  [bf16] decode max abs error %.4g, encode max abs error %.4g\n", decode_err,
              encode_err);
  EXPECT_LT(decode_err, 0.1);
  EXPECT_LT(encode_err, 0.1);
}

TEST(WanVae, RejectsFrameCountsThatAreNot4kPlus1) {
  const auto video = torch::zeros({3, 6, 16, 16});
  EXPECT_THROW(tiny_vae()->encode(video), ValidationError);
  EXPECT_THROW(tiny_vae()->encode(torch::zeros({3, 5, 12, 16})), ValidationError);
  EXPECT_THROW(tiny_vae()->decode(torch::zeros({8, 2, 4, 4})), ValidationError);
}

TEST(WanVae, ConfigFromForeignWeightsNamesTheMissingKey) {
  io::TensorMap tensors;
  tensors["model.weight"] = torch::zeros({2, 2});
  try {
    WanVaeConfig::from_weights(tensors, "other.pth");
    FAIL() << "expected LoadError";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("encoder.conv1.weight"), std::string::npos);
  }
}

}  // namespace
}  // namespace wan::models
