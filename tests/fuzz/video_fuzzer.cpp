// Fuzzes the video reader (libavformat/libavcodec through load_video, from a file as in a run):
// any input gives frames within the frame-pixel limit or throws LoadError.
#include <cstddef>
#include <cstdint>
#include <cstdio>

#include "core/error.h"
#include "fuzz_input.h"
#include "media/video_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = wan::fuzz::write_scratch(data, size, ".video");
  try {
    (void)wan::media::load_video(path, 4);
  } catch (const wan::LoadError&) {
  }
  std::remove(path.c_str());
  return 0;
}
