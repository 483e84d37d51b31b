// Spatial tiling of a VAE encode or decode: the frame is cut into overlapping tiles, each tile
// runs through the whole causal (time-chunked) pass on its own, and the results are blended
// with linear ramps across the overlaps. Memory then scales with the tile area instead of the
// frame area. Tiles are laid out on the latent grid (latent pixels), so a pixel tile of an
// encode is always 8x a latent tile and both directions share one layout.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <vector>

namespace wan::models::vae {

// One tile along one axis: latent pixels [start, start + length).
struct TileSpan {
  int64_t start = 0;
  int64_t length = 0;
  int64_t end() const { return start + length; }
};

// Tiles covering [0, size): one tile when `tile` is 0 or at least `size`; else
// ceil((size - tile) / (tile - overlap)) + 1 tiles of exactly `tile`, spread evenly from 0 to
// size - tile, so neighbours share at least `overlap` and no tile is a thin remainder.
// Needs 0 <= overlap < tile when tiling (the caller validates user input).
std::vector<TileSpan> tile_spans(int64_t size, int64_t tile, int64_t overlap);

// Blend weights of tile `index` of `spans` along its axis, `scale` output pixels per latent
// pixel: 1 inside, rising linearly over the overlap with the previous tile and falling over the
// overlap with the next one (samples at pixel centres, so no weight is 0). A border of the
// frame keeps weight 1. -> [length * scale] float32.
at::Tensor blend_ramp(const std::vector<TileSpan>& spans, size_t index, int64_t scale,
                      const at::TensorOptions& options);

// The tiles of one frame, rows x columns.
struct TileGrid {
  std::vector<TileSpan> rows, columns;
  size_t count() const { return rows.size() * columns.size(); }
  bool single() const { return count() == 1; }
};

// Grid for a latent of height x width latent pixels; throws ValidationError (naming `caller`)
// for a negative tile or overlap, or an overlap not smaller than the tile.
TileGrid plan_tiles(int64_t height, int64_t width, int64_t tile, int64_t overlap,
                    const char* caller);

// Runs `pass` on every tile and blends the results into one tensor.
//   input  [C, T, H, W] with H = height * input_scale, W = width * input_scale of the grid
//   pass(tile input [C, T, h_i, w_i], tile index) -> [C', T', h_i * output_scale / input_scale,
//        w_i * ...] float32 (decode: input_scale 1, output_scale 8; encode: 8 and 1)
//   -> [C', T', height * output_scale, width * output_scale] float32: sum_i w_i * out_i / sum_i w_i
// Only one tile's result is alive at a time besides the blended output.
at::Tensor blend_tiles(const at::Tensor& input, const TileGrid& grid, int64_t input_scale,
                       int64_t output_scale,
                       const std::function<at::Tensor(const at::Tensor&, size_t)>& pass);

}  // namespace wan::models::vae
