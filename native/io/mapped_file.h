// A read-only file mapped into memory, shared by every tensor that views it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace wan::io {

class MappedFile {
 public:
  // Maps the whole file copy-on-write: tensors viewing it may be written without touching the file.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  MappedFile(std::string path, uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  uint8_t* data_;
  size_t size_;
};

}  // namespace wan::io
