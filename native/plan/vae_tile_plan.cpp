#include "plan/vae_tile_plan.h"

#include <algorithm>

#include "models/vae/wan_vae.h"
#include "plan/activation_estimates.h"

namespace wan::plan {

VaeTilePixels vae_tile_pixels(int64_t height, int64_t width, int64_t tile) {
  const int64_t stride = models::kVaeStrideSpace;
  const int64_t latent_h = height / stride, latent_w = width / stride;
  if (tile <= 0 || (tile >= latent_h && tile >= latent_w)) return {height, width, false};
  return {std::min(tile, latent_h) * stride, std::min(tile, latent_w) * stride, true};
}

int64_t vae_tile_call_bytes(int64_t base_channels, int64_t dtype_bytes) {
  // Measured on the tiny VAE's 32x32 tiles: about 0.6 MiB of 0.9-3.8 MiB; the untiled
  // calibration absorbs it at full frames (under 1 % there).
  const int64_t widest = 4 * base_channels;
  return 4 * 9 * widest * widest * dtype_bytes;
}

int64_t vae_tiled_decode_activation_bytes(int64_t latent_frames, int64_t height, int64_t width,
                                          int64_t tile, int64_t base_channels,
                                          int64_t dtype_bytes) {
  const auto pass = vae_tile_pixels(height, width, tile);
  if (!pass.tiled)
    return vae_decode_activation_bytes(latent_frames, height, width, base_channels, dtype_bytes);
  const int64_t frames = models::WanVaeConfig::video_frames(latent_frames);
  const int64_t blended = 3 * frames * height * width * 4 + height * width * 4;
  return blended + vae_tile_call_bytes(base_channels, dtype_bytes) +
         vae_decode_activation_bytes(latent_frames, pass.height, pass.width, base_channels,
                                     dtype_bytes);
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
