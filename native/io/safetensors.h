// The safetensors format: 8-byte little-endian header length, a JSON header, raw little-endian data.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "io/tensor_map.h"

namespace wan::io {

struct SafetensorsRecord {
  TensorInfo info;
  uint64_t begin = 0;  // byte range inside the data section
  uint64_t end = 0;
};

struct SafetensorsHeader {
  std::vector<SafetensorsRecord> records;  // in file order of their data
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // file offset of the data section (8 + header length)
};

// Headers above this are rejected before any allocation (the format's own bound).
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100ull << 20;

// Parses and checks a header given the first bytes of a file and the whole file's size:
// length bound, valid JSON, known dtypes, shape x dtype size == byte range, ranges inside the
// file and not overlapping. `origin` names the file in errors. Throws LoadError.
SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t available,
                                           uint64_t file_size, const std::string& origin);

// Reads only the header of a file (names, shapes, dtypes, metadata); never touches tensor data.
SafetensorsHeader read_safetensors_header(const std::string& path);

// Loads every tensor as a zero-copy view into a shared memory map (fp8 as torch's float8 dtypes).
TensorMap load_safetensors(const std::string& path, const LoadOptions& options = {},
                           std::map<std::string, std::string>* metadata = nullptr);

// Writes tensors (made contiguous, CPU) with optional metadata. Writes to a temporary name in the
// same folder and renames it when complete, so a failure leaves no partial file.
void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace wan::io
