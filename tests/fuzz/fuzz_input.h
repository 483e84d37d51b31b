// Helpers shared by the fuzz targets.
#pragma once
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace wan::fuzz {

// The input written to a per-process scratch file, for readers that take a path (mmap, libav).
inline std::string write_scratch(const uint8_t* data, size_t size, const char* suffix) {
  const std::string path = "/tmp/wan_fuzz_" + std::to_string(::getpid()) + suffix;
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    if (size) std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  return path;
}

}  // namespace wan::fuzz
