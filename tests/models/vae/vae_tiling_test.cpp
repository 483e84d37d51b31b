// Spatial tiling of the VAE: the tile layout, the blend, and tiled against untiled encode and
// decode on the tiny VAE (float32, CPU).
#include "models/vae/vae_tiling.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <tuple>

#include "core/error.h"
#include "models/vae/wan_vae.h"
#include "test_util.h"

namespace wan::models {
namespace {

using ::wan::testing::tiny_path;
using vae::TileSpan;

WanVae& tiny_vae() {
  static WanVae vae = load_wan_vae(tiny_path("weights/vae_tiny.pth"));
  return vae;
}

// One latent frame of 8 x 12 latent pixels (one frame of 64 x 96): tiled passes of the tiny VAE
// cost about a second each on a loaded 2-core machine, so the error tests use a single frame;
// the time chunking inside each tile is tested on small clips below.
at::Tensor test_latent() {
  static const at::Tensor latent = [] {
    torch::manual_seed(11);
    return torch::randn({16, 1, 8, 12});
  }();
  return latent;
}

// A smooth video in [-1, 1]: `frames` frames of height x width.
at::Tensor smooth_video(int64_t frames, int64_t height, int64_t width) {
  const auto t = torch::arange(frames, torch::kFloat).view({1, frames, 1, 1});
  const auto y = torch::arange(height, torch::kFloat).view({1, 1, height, 1});
  const auto x = torch::arange(width, torch::kFloat).view({1, 1, 1, width});
  const auto c = torch::arange(3, torch::kFloat).view({3, 1, 1, 1});
  return torch::sin(0.11 * x + 0.07 * y + 0.3 * t + c) * torch::cos(0.05 * x - 0.09 * y + c) * 0.9;
}

at::Tensor test_video() {
  static const at::Tensor video = smooth_video(1, 64, 96);
  return video;
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

TEST(VaeTiling, SpansCoverTheAxisWithFullTilesAndAtLeastTheOverlap) {
  for (const auto& [size, tile, overlap] :
       std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {16, 6, 2}, {20, 8, 2}, {12, 5, 1}, {104, 32, 4}, {60, 32, 4}, {9, 8, 0}, {7, 3, 2}}) {
    SCOPED_TRACE(std::to_string(size) + "/" + std::to_string(tile) + "/" + std::to_string(overlap));
    const auto spans = vae::tile_spans(size, tile, overlap);
    ASSERT_GE(spans.size(), 2u);
    EXPECT_EQ(spans.front().start, 0);
    EXPECT_EQ(spans.back().end(), size);
    // Fewest tiles of the given stride: one less would not reach the end.
    const int64_t stride = tile - overlap;
    EXPECT_EQ(static_cast<int64_t>(spans.size()), (size - tile + stride - 1) / stride + 1);
    for (size_t i = 0; i < spans.size(); ++i) {
      EXPECT_EQ(spans[i].length, tile);
      if (i > 0) {
        EXPECT_GT(spans[i].start, spans[i - 1].start);
        EXPECT_GE(spans[i - 1].end() - spans[i].start, overlap);
      }
    }
  }
  // 16 = 6 + 3 gaps of 10/3: starts 0, 3, 7, 10.
  const auto spans = vae::tile_spans(16, 6, 2);
  ASSERT_EQ(spans.size(), 4u);
  EXPECT_EQ(spans[1].start, 3);
  EXPECT_EQ(spans[2].start, 7);
  EXPECT_EQ(spans[3].start, 10);
  // Untiled: tile 0, or a tile at least the size.
  for (int64_t tile : {0, 16, 40}) {
    const auto one = vae::tile_spans(16, tile, 2);
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(one[0].start, 0);
    EXPECT_EQ(one[0].length, 16);
  }
}

TEST(VaeTiling, RampsOfNeighboursAddUpToOneAcrossTheOverlap) {
  const std::vector<TileSpan> spans = {{0, 6}, {4, 6}};  // overlap 2 latent pixels
  const auto left = vae::blend_ramp(spans, 0, 8, at::kFloat);
  const auto right = vae::blend_ramp(spans, 1, 8, at::kFloat);
  ASSERT_EQ(left.size(0), 48);
  // Weight 1 at the frame borders and away from the overlap.
  EXPECT_TRUE(at::equal(left.narrow(0, 0, 32), torch::ones({32})));
  EXPECT_TRUE(at::equal(right.narrow(0, 16, 32), torch::ones({32})));
  // The 16 overlap pixels: linear, (k + 0.5) / 16 rising for the right tile, falling for the left.
  const auto rising = (torch::arange(16, torch::kDouble) + 0.5) / 16;
  EXPECT_ALLCLOSE(right.narrow(0, 0, 16), rising.to(at::kFloat), 1e-7);
  EXPECT_ALLCLOSE(left.narrow(0, 32, 16), rising.flip({0}).to(at::kFloat), 1e-7);
  EXPECT_ALLCLOSE(left.narrow(0, 32, 16) + right.narrow(0, 0, 16), torch::ones({16}), 1e-7);
}

// Tiles that each return their exact crop of one field must blend back to that field, wherever
// they overlap: this fails for a misplaced tile, a wrong weight or a missing normalisation.
TEST(VaeTiling, BlendOfExactCropsReproducesTheField) {
  torch::manual_seed(5);
  const auto field = torch::randn({2, 3, 12 * 8, 20 * 8});  // [C, T, H, W], 8x the grid
  const auto input = torch::zeros({1, 1, 12, 20});
  for (const auto& [tile, overlap] :
       std::vector<std::pair<int64_t, int64_t>>{{5, 1}, {6, 2}, {7, 3}, {8, 0}, {12, 4}}) {
    const auto grid = vae::plan_tiles(12, 20, tile, overlap, "test");
    ASSERT_FALSE(grid.single());
    size_t calls = 0;
    const auto blended = vae::blend_tiles(input, grid, 1, 8, [&](const at::Tensor&, size_t i) {
      EXPECT_EQ(i, calls++);
      const auto& row = grid.rows[i / grid.columns.size()];
      const auto& column = grid.columns[i % grid.columns.size()];
      return field.narrow(2, row.start * 8, row.length * 8)
          .narrow(3, column.start * 8, column.length * 8)
          .clone();
    });
    EXPECT_EQ(calls, grid.count());
    EXPECT_ALLCLOSE(blended, field, 1e-5);
  }
}

// Two tiles that return different constants: across the overlap the blend is the linear ramp
// between them, and outside it each tile's own value.
TEST(VaeTiling, BlendCrossFadesLinearlyBetweenTiles) {
  const auto grid = vae::plan_tiles(/*height=*/4, /*width=*/10, /*tile=*/6, /*overlap=*/2, "test");
  ASSERT_EQ(grid.rows.size(), 1u);
  ASSERT_EQ(grid.columns.size(), 2u);  // columns [0, 6) and [4, 10)
  const auto blended = vae::blend_tiles(
      torch::zeros({1, 1, 4, 10}), grid, 1, 8, [&](const at::Tensor&, size_t i) {
        return torch::full({1, 1, 32, 48}, i == 0 ? 1.0f : 3.0f);
      });
  const auto row = blended[0][0][17];  // any row
  EXPECT_TRUE(at::equal(row.narrow(0, 0, 32), torch::full({32}, 1.0f)));
  EXPECT_TRUE(at::equal(row.narrow(0, 48, 32), torch::full({32}, 3.0f)));
  const auto ramp = 1.0 + 2.0 * (torch::arange(16, torch::kDouble) + 0.5) / 16;
  EXPECT_ALLCLOSE(row.narrow(0, 32, 16), ramp.to(at::kFloat), 1e-6);
}

TEST(VaeTiling, RejectsAnOverlapNotSmallerThanTheTile) {
  try {
    vae::plan_tiles(12, 20, 4, 4, "WanVae.decode");
    FAIL() << "expected ValidationError";
  } catch (const ValidationError& e) {
    EXPECT_NE(std::string(e.what()).find("WanVae.decode: tile overlap 4 must be smaller"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(vae::plan_tiles(12, 20, -1, 0, "x"), ValidationError);
  EXPECT_THROW(tiny_vae()->decode(test_latent(), VaeRunOptions().tile_size(4).tile_overlap(5)),
               ValidationError);
  EXPECT_THROW(tiny_vae()->encode(test_video(), VaeRunOptions().tile_size(4).tile_overlap(4)),
               ValidationError);
}

TEST(WanVaeTiled, OneTileIsBitIdenticalToUntiled) {
  const auto latent = test_latent();
  const auto untiled = tiny_vae()->decode(latent);
  for (int64_t tile : {12, 64})
    EXPECT_TRUE(at::equal(tiny_vae()->decode(latent, VaeRunOptions().tile_size(tile).tile_overlap(4)),
                          untiled))
        << tile;
  const auto video = test_video();
  EXPECT_TRUE(at::equal(tiny_vae()->encode(video, VaeRunOptions().tile_size(12).tile_overlap(2)),
                        tiny_vae()->encode(video)));
}

// Tile layouts on the 8 x 12 test latent: 2 x 3 tiles of 6 (overlap 2), 2 x 3 tiles of 5 that
// divide neither side (overlap 1), and 2 x 2 tiles of 6 with no overlap asked for: the rows
// still overlap by 4 (6 + 6 > 8), the columns meet at a hard seam.
struct Layout {
  int64_t tile, overlap;
  double measured_decode, measured_encode;  // max abs error against untiled (docs/vae.md)
};
const Layout kLayouts[] = {{6, 2, 0.2351, 0.3182}, {5, 1, 0.4306, 0.3780}, {6, 0, 0.6549, 0.5057}};

// Max abs error of tiled against untiled over all pixels: each layout's bound is 1.25x its
// measured error, and the blended layouts beat the hard seam.
TEST(WanVaeTiled, DecodeStaysWithinTheMeasuredErrorOfUntiled) {
  const auto latent = test_latent();
  const auto untiled = tiny_vae()->decode(latent);
  std::vector<double> errors;
  for (const Layout& layout : kLayouts) {
    const auto tiled = tiny_vae()->decode(
        latent, VaeRunOptions().tile_size(layout.tile).tile_overlap(layout.overlap));
    ASSERT_EQ(tiled.sizes(), untiled.sizes());
    errors.push_back(max_abs_diff(tiled, untiled));
    std::printf("  [decode tile %lld overlap %lld] max abs error %.4g, mean %.3g\n",
                static_cast<long long>(layout.tile), static_cast<long long>(layout.overlap),
                errors.back(), (tiled - untiled).abs().mean().item<double>());
    EXPECT_LT(errors.back(), 1.25 * layout.measured_decode);
  }
  EXPECT_LT(errors[0], errors[2]);
  EXPECT_LT(errors[1], errors[2]);
}

TEST(WanVaeTiled, EncodeStaysWithinTheMeasuredErrorOfUntiled) {
  const auto video = test_video();
  const auto untiled = tiny_vae()->encode(video);
  std::vector<double> errors;
  for (const Layout& layout : kLayouts) {
    const auto tiled = tiny_vae()->encode(
        video, VaeRunOptions().tile_size(layout.tile).tile_overlap(layout.overlap));
    ASSERT_EQ(tiled.sizes(), untiled.sizes());
    errors.push_back(max_abs_diff(tiled, untiled));
    std::printf("  [encode tile %lld overlap %lld] max abs error %.4g, mean %.3g\n",
                static_cast<long long>(layout.tile), static_cast<long long>(layout.overlap),
                errors.back(), (tiled - untiled).abs().mean().item<double>());
    EXPECT_LT(errors.back(), 1.25 * layout.measured_encode);
  }
  EXPECT_LT(errors[0], errors[2]);
  EXPECT_LT(errors[1], errors[2]);
}

// A tiled encode of a 5-frame clip, one latent frame per chunk, is exactly the blend of each
// crop's own untiled whole-clip encode: every tile carries its own causal caches through the
// time chunks, and the results meet at the layout's places.
TEST(WanVaeTiled, EncodeIsTheBlendOfUntiledEncodesOfTheCrops) {
  const auto video = smooth_video(5, 32, 64);      // latent 4 x 8
  const auto grid = vae::plan_tiles(4, 8, 6, 2, "test");  // 1 x 2 tiles: columns [0, 6), [2, 8)
  ASSERT_EQ(grid.count(), 2u);
  const auto expected = vae::blend_tiles(video, grid, 8, 1, [&](const at::Tensor& crop, size_t) {
    return tiny_vae()->encode_unscaled(crop.contiguous());
  });
  const auto tiled = tiny_vae()->encode_unscaled(
      video, VaeRunOptions().tile_size(6).tile_overlap(2).latent_frames_per_chunk(1));
  EXPECT_ALLCLOSE(tiled, expected, 1e-6);
}

TEST(WanVaeTiled, ProgressCountsEveryTilesFrames) {
  torch::manual_seed(12);
  const auto latent = torch::randn({16, 2, 4, 8});
  std::vector<std::pair<int, int>> progress;
  const auto per_frame = tiny_vae()->decode(
      latent, VaeRunOptions().tile_size(6).tile_overlap(2).latent_frames_per_chunk(1).progress(
                  [&](int done, int total) { progress.emplace_back(done, total); }));
  // 4 x 8 with tile 6: 1 row, 2 columns; 2 latent frames each.
  EXPECT_EQ(progress, (std::vector<std::pair<int, int>>{{1, 4}, {2, 4}, {3, 4}, {4, 4}}));
  // Chunking time inside each tile changes nothing.
  EXPECT_ALLCLOSE(per_frame,
                  tiny_vae()->decode(latent, VaeRunOptions().tile_size(6).tile_overlap(2)), 1e-6);
}

}  // namespace
}  // namespace wan::models
