// The size of a video and of the latent it implies. The strides are properties of the Wan VAE
// and DiT; every node that needs latent arithmetic uses these, never bare numbers.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace wan::pipeline {

constexpr int64_t kLatentChannels = 16;  // z_dim of the Wan2.1 VAE
constexpr int64_t kVaeStrideTime = 4;    // 4 frames per latent frame, after the first
constexpr int64_t kVaeStrideSpace = 8;   // pixels per latent row/column
constexpr int64_t kPatchSpace = 2;       // DiT patch (1, 2, 2)
// Width and height must be multiples of this: the VAE stride times the DiT patch.
constexpr int64_t kSizeMultiple = kVaeStrideSpace * kPatchSpace;

struct VideoShape {
  int64_t width = 832;
  int64_t height = 480;
  int64_t frames = 81;

  int64_t latent_frames() const { return (frames - 1) / kVaeStrideTime + 1; }
  int64_t latent_height() const { return height / kVaeStrideSpace; }
  int64_t latent_width() const { return width / kVaeStrideSpace; }
  // [16, T, H/8, W/8]
  std::vector<int64_t> latent_shape() const;
  // DiT tokens of a latent with `latent_frames` frames of this size.
  int64_t tokens(int64_t latent_frames) const;

  bool operator==(const VideoShape& o) const {
    return width == o.width && height == o.height && frames == o.frames;
  }
  bool operator!=(const VideoShape& o) const { return !(*this == o); }
};

// Throws ValidationError when frames is not 4k+1 or width/height are not multiples of 16;
// `where` names the node ("Sample (node 12)"), and the message proposes the nearest valid values.
void check_video_shape(const VideoShape& shape, const std::string& where);

}  // namespace wan::pipeline
