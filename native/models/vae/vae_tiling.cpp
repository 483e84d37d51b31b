#include "models/vae/vae_tiling.h"

#include <c10/core/InferenceMode.h>

#include <string>

#include "core/error.h"

namespace wan::models::vae {

std::vector<TileSpan> tile_spans(int64_t size, int64_t tile, int64_t overlap) {
  if (tile <= 0 || tile >= size) return {{0, size}};
  TORCH_CHECK(overlap >= 0 && overlap < tile, "tile_spans: overlap ", overlap,
              " outside [0, tile ", tile, ")");
  const int64_t stride = tile - overlap;
  const int64_t gaps = (size - tile + stride - 1) / stride;  // tiles - 1
  std::vector<TileSpan> spans;
  spans.reserve(static_cast<size_t>(gaps + 1));
  // Starts rounded from i * (size - tile) / gaps: neighbours are at most ceil((size - tile) /
  // gaps) <= stride apart, so they share at least `overlap`.
  for (int64_t i = 0; i <= gaps; ++i)
    spans.push_back({(i * (size - tile) + gaps / 2) / gaps, tile});
  return spans;
}

at::Tensor blend_ramp(const std::vector<TileSpan>& spans, size_t index, int64_t scale,
                      const at::TensorOptions& options) {
  const TileSpan& span = spans[index];
  const int64_t length = span.length * scale;
  auto weight = at::ones({length}, at::kDouble);
  // Pixel-centre samples (k + 0.5) / n: the two ramps of an overlap add up to 1 at every pixel.
  auto rising = [](int64_t n) { return at::arange(n, at::kDouble).add_(0.5).div_(n); };
  if (index > 0) {
    const int64_t n = (spans[index - 1].end() - span.start) * scale;
    if (n > 0) weight.narrow(0, 0, n).mul_(rising(n));
  }
  if (index + 1 < spans.size()) {
    const int64_t n = (span.end() - spans[index + 1].start) * scale;
    if (n > 0) weight.narrow(0, length - n, n).mul_(rising(n).flip({0}));
  }
  return weight.to(options.dtype(at::kFloat));
}

TileGrid plan_tiles(int64_t height, int64_t width, int64_t tile, int64_t overlap,
                    const char* caller) {
  if (tile < 0 || overlap < 0)
    throw ValidationError(std::string(caller) + ": tile size " + std::to_string(tile) +
                          " and overlap " + std::to_string(overlap) +
                          " (latent pixels) must not be negative; tile size 0 means untiled");
  if (tile > 0 && overlap >= tile)
    throw ValidationError(std::string(caller) + ": tile overlap " + std::to_string(overlap) +
                          " must be smaller than the tile size " + std::to_string(tile) +
                          " (latent pixels); use an overlap of at most " +
                          std::to_string(tile - 1));
  return {tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)};
}

at::Tensor blend_tiles(const at::Tensor& input, const TileGrid& grid, int64_t input_scale,
                       int64_t output_scale,
                       const std::function<at::Tensor(const at::Tensor&, size_t)>& pass) {
  const int64_t height = grid.rows.back().end(), width = grid.columns.back().end();
  TORCH_CHECK(input.dim() == 4 && input.size(2) == height * input_scale &&
                  input.size(3) == width * input_scale,
              "blend_tiles: input ", input.sizes(), " does not match the grid");
  // The passes return inference tensors, which are then weighted in place.
  c10::InferenceMode guard;
  std::vector<at::Tensor> row_ramps, column_ramps;
  for (size_t i = 0; i < grid.rows.size(); ++i)
    row_ramps.push_back(blend_ramp(grid.rows, i, output_scale, input.options()));
  for (size_t i = 0; i < grid.columns.size(); ++i)
    column_ramps.push_back(blend_ramp(grid.columns, i, output_scale, input.options()));

  at::Tensor blended, weight_sum;  // [C', T', H', W'] and [H', W'], made from the first tile
  size_t index = 0;
  for (size_t r = 0; r < grid.rows.size(); ++r) {
    const TileSpan& row = grid.rows[r];
    for (size_t c = 0; c < grid.columns.size(); ++c, ++index) {
      const TileSpan& column = grid.columns[c];
      const auto tile_input = input.narrow(2, row.start * input_scale, row.length * input_scale)
                                  .narrow(3, column.start * input_scale,
                                          column.length * input_scale);
      auto result = pass(tile_input, index);
      TORCH_CHECK(result.dim() == 4 && result.size(2) == row.length * output_scale &&
                      result.size(3) == column.length * output_scale,
                  "blend_tiles: tile result ", result.sizes(), " has the wrong size");
      if (!blended.defined()) {
        blended = at::zeros({result.size(0), result.size(1), height * output_scale,
                             width * output_scale},
                            result.options());
        weight_sum = at::zeros({height * output_scale, width * output_scale}, result.options());
      }
      const auto weight = at::outer(row_ramps[r], column_ramps[c]);  // [h', w']
      result.mul_(weight);
      blended.narrow(2, row.start * output_scale, row.length * output_scale)
          .narrow(3, column.start * output_scale, column.length * output_scale)
          .add_(result);
      weight_sum.narrow(0, row.start * output_scale, row.length * output_scale)
          .narrow(1, column.start * output_scale, column.length * output_scale)
          .add_(weight);
    }
  }
  return blended.div_(weight_sum);
}

}  // namespace wan::models::vae
