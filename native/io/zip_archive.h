// Minimal reader of the zip container torch.save writes: central directory (incl. zip64), stored
// records only. Compressed records are refused: torch.save never writes them, and reading them
// would need a second copy of the data.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "io/mapped_file.h"

namespace wan::io {

struct ZipRecord {
  std::string name;
  uint64_t offset = 0;  // file offset of the record's data
  uint64_t size = 0;
  uint16_t method = 0;  // 0 = stored
};

class ZipArchive {
 public:
  // Parses the central directory of a mapped file; throws LoadError naming the file.
  explicit ZipArchive(std::shared_ptr<MappedFile> file);

  const std::map<std::string, ZipRecord>& records() const { return records_; }
  bool contains(const std::string& name) const { return records_.count(name) != 0; }
  // The record's data; throws LoadError when missing or compressed.
  const ZipRecord& stored(const std::string& name) const;
  const std::shared_ptr<MappedFile>& file() const { return file_; }

  // True when the first bytes look like a zip local file header.
  static bool looks_like_zip(const uint8_t* data, size_t size);

 private:
  std::shared_ptr<MappedFile> file_;
  std::map<std::string, ZipRecord> records_;
};

}  // namespace wan::io
