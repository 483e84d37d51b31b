#include "pipeline/video_shape.h"

#include "core/error.h"

namespace wan::pipeline {

std::vector<int64_t> VideoShape::latent_shape() const {
  return {kLatentChannels, latent_frames(), latent_height(), latent_width()};
}

int64_t VideoShape::tokens(int64_t frames_latent) const {
  return frames_latent * (latent_height() / kPatchSpace) * (latent_width() / kPatchSpace);
}

void check_video_shape(const VideoShape& shape, const std::string& where) {
  auto fail = [&](const std::string& input, int64_t value, const std::string& rule,
                  int64_t below, int64_t above) {
    throw ValidationError(where + " input '" + input + "': " + std::to_string(value) + " is not " +
                          rule + "; use " + std::to_string(below) + " or " +
                          std::to_string(above) + ".");
  };
  if (shape.frames < 1 || (shape.frames - 1) % kVaeStrideTime != 0) {
    const int64_t below = std::max<int64_t>(1, (shape.frames - 1) / kVaeStrideTime * kVaeStrideTime + 1);
    fail("frames", shape.frames, "4k+1", below, below + kVaeStrideTime);
  }
  for (const auto& [input, value] : {std::pair<const char*, int64_t>{"width", shape.width},
                                     std::pair<const char*, int64_t>{"height", shape.height}}) {
    if (value < kSizeMultiple || value % kSizeMultiple != 0) {
      const int64_t below = std::max<int64_t>(kSizeMultiple, value / kSizeMultiple * kSizeMultiple);
      fail(input, value, "a positive multiple of 16", below, below + kSizeMultiple);
    }
  }
}

}  // namespace wan::pipeline
