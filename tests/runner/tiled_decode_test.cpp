// Decode's and the conditioning encode's tile_size / overlap through wan-run: the shipped T2V and
// I2V workflows on the tiny models, untiled, in one tile as large as the frame, and in tiles; bad
// tiling inputs are validation errors that run nothing.
#include <gtest/gtest.h>

#include "runner_test_util.h"

namespace wan::runner::testing {
namespace {

// The frames of `task`'s baseline (t2v 64x64x9, i2v 64x48x9) with `extra` --set assignments;
// exit code in `code`.
at::Tensor task_frames(const std::string& task, const std::string& name,
                       const std::vector<std::string>& extra, int* code, std::string* err) {
  TempDir dir("tiled_" + task + "_" + name);
  write_api_prompt_with_frames(task, "baseline", dir / "prompt.json");
  auto sets = tiny_overrides(task, /*fp32=*/false);
  sets.insert(sets.end(), extra.begin(), extra.end());
  const auto result = run_wan(with_sets({(dir / "prompt.json").string(), "--models",
                                         models_dir().string(), "--output",
                                         (dir / "output").string()},
                                        sets));
  *code = result.exit_code;
  *err = result.err;
  if (result.exit_code != 0) {
    EXPECT_TRUE(all_files(dir / "output").empty()) << "a refused run wrote files";
    return at::Tensor();
  }
  return saved_frames(dir / "output");
}

at::Tensor t2v_frames(const std::string& name, const std::vector<std::string>& extra, int* code,
                      std::string* err) {
  return task_frames("t2v", name, extra, code, err);
}

TEST(TiledDecode, OneTileMatchesUntiledBitForBitAndTilesStayClose) {
  int code = 0;
  std::string err;
  const auto untiled = t2v_frames("untiled", {}, &code, &err);
  ASSERT_EQ(code, 0) << err;
  ASSERT_TRUE(untiled.defined());
  // A 64-pixel tile covers the 64x64 frame: the untiled pass.
  const auto one_tile = t2v_frames("one", {"Decode.tile_size=64", "Decode.overlap=16"}, &code, &err);
  ASSERT_EQ(code, 0) << err;
  EXPECT_TRUE(at::equal(one_tile, untiled));
  // 32-pixel tiles, 8 pixels of overlap: 3 x 3 tiles of 4 latent pixels.
  const auto tiled = t2v_frames("tiled", {"Decode.tile_size=32", "Decode.overlap=8"}, &code, &err);
  ASSERT_EQ(code, 0) << err;
  ASSERT_EQ(tiled.sizes(), untiled.sizes());
  const double diff = (tiled - untiled).abs().max().item<double>();
  std::printf("  tiled 32/8 against untiled: max abs difference %.4g (IMAGE units)\n", diff);
  EXPECT_GT(diff, 0.0);  // the tiles were really used
  EXPECT_LT(diff, 0.5);
}

TEST(TiledDecode, RejectsAnOverlapNotBelowTheTileAndSizesOffTheEightPixelGrid) {
  int code = 0;
  std::string err;
  t2v_frames("overlap", {"Decode.tile_size=32", "Decode.overlap=32"}, &code, &err);
  EXPECT_EQ(code, 2) << err;
  EXPECT_NE(err.find("Decode input 'overlap': 32 must be smaller than tile_size 32"),
            std::string::npos)
      << err;
  t2v_frames("grid", {"Decode.tile_size=36"}, &code, &err);
  EXPECT_EQ(code, 2) << err;
  EXPECT_NE(err.find("Decode input 'tile_size': 36 is not a multiple of 8; use 32 or 40"),
            std::string::npos)
      << err;
}

// ImageToVideo's encode of the start frame (64x48: latent 8 x 6) in 2 x 3 tiles of 32 pixels.
TEST(TiledEncode, OneTileMatchesUntiledBitForBitAndTilesStayClose) {
  int code = 0;
  std::string err;
  const auto untiled = task_frames("i2v", "untiled", {}, &code, &err);
  ASSERT_EQ(code, 0) << err;
  const auto one_tile =
      task_frames("i2v", "one", {"ImageToVideo.tile_size=64", "ImageToVideo.overlap=8"}, &code, &err);
  ASSERT_EQ(code, 0) << err;
  EXPECT_TRUE(at::equal(one_tile, untiled));
  const auto tiled =
      task_frames("i2v", "tiled", {"ImageToVideo.tile_size=32", "ImageToVideo.overlap=8"}, &code, &err);
  ASSERT_EQ(code, 0) << err;
  ASSERT_EQ(tiled.sizes(), untiled.sizes());
  const double diff = (tiled - untiled).abs().max().item<double>();
  std::printf("  i2v with a tiled encode 32/8 against untiled: max abs difference %.4g\n", diff);
  EXPECT_GT(diff, 0.0);
  EXPECT_LT(diff, 0.5);
  task_frames("i2v", "bad", {"ImageToVideo.tile_size=32"}, &code, &err);  // overlap 64 >= 32
  EXPECT_EQ(code, 2) << err;
  EXPECT_NE(err.find("ImageToVideo input 'overlap': 64 must be smaller than tile_size 32"),
            std::string::npos)
      << err;
}

}  // namespace
}  // namespace wan::runner::testing
