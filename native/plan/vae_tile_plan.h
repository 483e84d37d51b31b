// Memory of a spatially tiled VAE decode (models/vae/vae_tiling.h), and the tile that fits a
// byte budget. The activations of a tiled decode scale with the tile's area; only the blended
// output and its weight map keep the size of the whole frame.
#pragma once
#include <cstdint>
#include <optional>

namespace wan::plan {

// Bytes of a decode's activations for `latent_frames` latent frames of height x width video
// pixels, in square tiles of `tile` latent pixels (0 or at least the latent = untiled, the same
// bytes as vae_decode_activation_bytes): one tile's untiled decode at the tile's size, the
// float32 blended output [3, F, H, W] and its float32 weight map [H, W], and the per-call
// weight copies of the widest convolution, which do not shrink with the tile.
int64_t vae_tiled_decode_activation_bytes(int64_t latent_frames, int64_t height, int64_t width,
                                          int64_t tile, int64_t base_channels,
                                          int64_t dtype_bytes);

// The video pixels one pass of a tiled encode or decode covers: min(tile, side) per axis, in
// video pixels; `tiled` is false (the whole frame) for tile 0 or a tile at least the latent.
struct VaeTilePixels {
  int64_t height = 0, width = 0;
  bool tiled = false;
};
VaeTilePixels vae_tile_pixels(int64_t height, int64_t width, int64_t tile);

// Bytes each convolution call of a tiled pass holds that do not shrink with the tile: the widest
// 3x3x3 conv's (4 x base width) three contiguous temporal taps and the backend's reordered weight.
int64_t vae_tile_call_bytes(int64_t base_channels, int64_t dtype_bytes);

// The tile (latent pixels) whose decode activations fit `budget` bytes with the fewest tiles:
// 0 when the untiled decode fits, else the largest tile above `overlap` that fits; nullopt when
// not even a tile of overlap + 1 fits.
std::optional<int64_t> largest_vae_decode_tile(int64_t budget, int64_t latent_frames,
                                               int64_t height, int64_t width, int64_t overlap,
                                               int64_t base_channels, int64_t dtype_bytes);

}  // namespace wan::plan
