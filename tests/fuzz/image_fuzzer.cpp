// Fuzzes the still and animated image decoders (PNG through libpng, JPEG through libjpeg-turbo,
// WebP through libwebp): any input decodes within the pixel limits or throws LoadError.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "media/image_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto loaded = wan::media::decode_image(data, size, "fuzz");
    if (loaded.image.dim() != 4 || loaded.image.size(3) != 3) __builtin_trap();
  } catch (const wan::LoadError&) {
  }
  return 0;
}
