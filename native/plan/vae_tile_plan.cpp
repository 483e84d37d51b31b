#include "plan/vae_tile_plan.h"

#include <algorithm>

#include "models/vae/wan_vae.h"
#include "plan/memory_plan.h"

namespace wan::plan {

int64_t vae_tiled_decode_activation_bytes(int64_t latent_frames, int64_t height, int64_t width,
                                          int64_t tile, int64_t base_channels,
                                          int64_t dtype_bytes) {
  const int64_t stride = models::kVaeStrideSpace;
  const int64_t latent_h = height / stride, latent_w = width / stride;
  if (tile <= 0 || (tile >= latent_h && tile >= latent_w))
    return vae_decode_activation_bytes(latent_frames, height, width, base_channels, dtype_bytes);
  const int64_t tile_h = std::min(tile, latent_h) * stride, tile_w = std::min(tile, latent_w) * stride;
  const int64_t frames = models::WanVaeConfig::video_frames(latent_frames);
  const int64_t blended = 3 * frames * height * width * 4 + height * width * 4;
  // A cost per convolution call that does not shrink with the tile: the widest 3x3x3 conv
  // (4 x base width, the middle and first stage) holds its three temporal taps as contiguous
  // copies plus the backend's reordered weight, 4 x 9 x width^2 elements. The untiled
  // calibration absorbs it at full frames (under 1 % there); at tile sizes it counts (measured
  // on the tiny VAE's 32x32 tiles: about 0.6 MiB of 0.9-3.8 MiB).
  const int64_t widest = 4 * base_channels;
  const int64_t per_call = 4 * 9 * widest * widest * dtype_bytes;
  return blended + per_call +
         vae_decode_activation_bytes(latent_frames, tile_h, tile_w, base_channels, dtype_bytes);
}

std::optional<int64_t> largest_vae_decode_tile(int64_t budget, int64_t latent_frames,
                                               int64_t height, int64_t width, int64_t overlap,
                                               int64_t base_channels, int64_t dtype_bytes) {
  auto bytes = [&](int64_t tile) {
    return vae_tiled_decode_activation_bytes(latent_frames, height, width, tile, base_channels,
                                             dtype_bytes);
  };
  if (bytes(0) <= budget) return 0;
  // The bytes grow with the tile, so the largest fitting tile is found by bisection over
  // (overlap, longest latent side).
  const int64_t longest = std::max(height, width) / models::kVaeStrideSpace;
  int64_t lo = overlap + 1, hi = longest - 1;
  if (lo > hi || bytes(lo) > budget) return std::nullopt;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (bytes(mid) <= budget) lo = mid; else hi = mid - 1;
  }
  return lo;
}

}  // namespace wan::plan
