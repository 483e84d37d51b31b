// The planned activations of a tiled VAE decode against the peak a tiled decode of the tiny VAE
// reaches on the virtual accelerator, and the tile chosen for a byte budget.
#include "plan/vae_tile_plan.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>

#include "device/device_manager.h"
#include "models/vae/wan_vae.h"
#include "plan/memory_plan.h"
#include "test_util.h"

namespace wan::plan {
namespace {

// The official decoder's first-stage width (96) and float32 activations.
constexpr int64_t kOfficialWidth = 96;

TEST(VaeTilePlan, OneTileOrNoTilePlansTheUntiledDecode) {
  const int64_t untiled = vae_decode_activation_bytes(2, 480, 832, kOfficialWidth, 4);
  EXPECT_EQ(vae_tiled_decode_activation_bytes(2, 480, 832, 0, kOfficialWidth, 4), untiled);
  EXPECT_EQ(vae_tiled_decode_activation_bytes(2, 480, 832, 104, kOfficialWidth, 4), untiled);
  // Tiles: one tile's decode plus the whole frame's float32 output and weight map.
  const int64_t tiled = vae_tiled_decode_activation_bytes(2, 480, 832, 32, kOfficialWidth, 4);
  EXPECT_EQ(tiled, vae_decode_activation_bytes(2, 256, 256, kOfficialWidth, 4) +
                       3 * 5 * 480 * 832 * 4 + 480 * 832 * 4 + 4 * 9 * 384 * 384 * 4);
  EXPECT_LT(tiled, untiled / 3);
}

TEST(VaeTilePlan, LargestTileFitsTheBudgetAndTheNextLargerDoesNot) {
  const int64_t untiled = vae_decode_activation_bytes(2, 480, 832, kOfficialWidth, 4);
  EXPECT_EQ(largest_vae_decode_tile(untiled, 2, 480, 832, 4, kOfficialWidth, 4), 0);
  for (int64_t budget : {untiled / 2, untiled / 4, int64_t{1} << 29}) {
    const auto tile = largest_vae_decode_tile(budget, 2, 480, 832, 4, kOfficialWidth, 4);
    ASSERT_TRUE(tile.has_value()) << budget;
    EXPECT_GT(*tile, 4);
    EXPECT_LE(vae_tiled_decode_activation_bytes(2, 480, 832, *tile, kOfficialWidth, 4), budget);
    EXPECT_GT(vae_tiled_decode_activation_bytes(2, 480, 832, *tile + 1, kOfficialWidth, 4), budget)
        << budget;
  }
  // Below the blended output itself nothing fits.
  EXPECT_FALSE(largest_vae_decode_tile(3 * 5 * 480 * 832 * 4, 2, 480, 832, 4, kOfficialWidth, 4)
                   .has_value());
}

struct MeasuredDecode {
  int64_t activation_peak = 0;  // vgpu peak minus weights and the latent moved in
  at::Tensor video;
};

// Decodes `latent` with the tiny VAE offloaded onto a 1 GiB virtual accelerator.
MeasuredDecode decode_on_virtual_accelerator(const at::Tensor& latent, int64_t tile,
                                             int64_t overlap) {
  device::ComputeDeviceOptions options;
  options.device = "cpu";
  options.reserve = 0;
  options.vram = device::kGiB;
  device::DeviceManager devices(options);
  auto vae = models::load_wan_vae(wan::testing::tiny_path("weights/vae_tiny.pth"));
  auto model = devices.adopt(vae.ptr(), device::Placement::kOffload, "vae");
  torch::NoGradGuard no_grad;
  MeasuredDecode m;
  auto lease = devices.lease(model, "Decode (node 1)");
  const auto on_device = lease.to_compute(latent);
  devices.reset_peaks();
  const int64_t base = devices.compute().bytes_in_use();
  m.video = lease.to_cpu(
      vae->decode(on_device, models::VaeRunOptions().tile_size(tile).tile_overlap(overlap)));
  m.activation_peak = devices.compute().bytes_peak() - base;
  return m;
}

// 64 x 64 video (8 x 8 latent) in tiles of 4 latent pixels, overlap 1: 3 x 3 tiles of 32 x 32
// pixels. One frame (decoded whole) and 13 frames (4 latent frames: chunked, as the shipped
// 81-frame workflows decode).
TEST(VaeTilePlan, TiledDecodePeakOnTheVirtualAcceleratorWithinTenPercentOfThePlan) {
  const int64_t width = 16;  // the tiny VAE's decoder width
  for (int64_t latent_frames : {1, 4}) {
    torch::manual_seed(2);
    const auto latent = torch::randn({16, latent_frames, 8, 8});
    const auto tiled = decode_on_virtual_accelerator(latent, 4, 1);
    const int64_t planned_untiled = vae_decode_activation_bytes(latent_frames, 64, 64, width, 4);
    const int64_t planned_tiled =
        vae_tiled_decode_activation_bytes(latent_frames, 64, 64, 4, width, 4);
    std::printf("  [%lld latent frames] tiled 4/1: planned %lld measured %lld (%+.1f %%); "
                "untiled planned %lld\n",
                static_cast<long long>(latent_frames), static_cast<long long>(planned_tiled),
                static_cast<long long>(tiled.activation_peak),
                100.0 * (planned_tiled - tiled.activation_peak) / tiled.activation_peak,
                static_cast<long long>(planned_untiled));
    EXPECT_NEAR(static_cast<double>(planned_tiled), static_cast<double>(tiled.activation_peak),
                0.10 * static_cast<double>(tiled.activation_peak));
    EXPECT_EQ(tiled.video.sizes(), at::IntArrayRef({3, (latent_frames - 1) * 4 + 1, 64, 64}));
    if (latent_frames == 1) {
      // Tiling is what brought the peak down (the per-call weight copies stay).
      const auto untiled = decode_on_virtual_accelerator(latent, 0, 0);
      std::printf("  [1 latent frame] untiled measured %lld\n",
                  static_cast<long long>(untiled.activation_peak));
      EXPECT_LT(tiled.activation_peak, untiled.activation_peak * 3 / 4);
    } else {
      EXPECT_LT(tiled.activation_peak, planned_untiled / 2);
    }
  }
}

}  // namespace
}  // namespace wan::plan
