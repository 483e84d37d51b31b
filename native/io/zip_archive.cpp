#include "io/zip_archive.h"

#include <algorithm>

#include "core/error.h"

namespace wan::io {
namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfCentralDir = 0x06054b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint32_t kZip64EndOfCentralDir = 0x06064b50;

// Bounds-checked little-endian reads from the mapping.
class Cursor {
 public:
  Cursor(const MappedFile& file, uint64_t pos) : file_(file), pos_(pos) {}
  void seek(uint64_t pos) { pos_ = pos; }
  uint64_t read(int bytes) {
    if (pos_ > file_.size() || uint64_t(bytes) > file_.size() - pos_)
      throw LoadError(file_.path() + ": zip structure runs past the end of the file (truncated?)");
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | file_.data()[pos_ + i];
    pos_ += bytes;
    return v;
  }
  std::string read_string(uint64_t len) {
    if (pos_ > file_.size() || len > file_.size() - pos_)
      throw LoadError(file_.path() + ": zip name runs past the end");
    std::string s(reinterpret_cast<const char*>(file_.data() + pos_), len);
    pos_ += len;
    return s;
  }
  void skip(uint64_t n) { pos_ += n; }
  uint64_t pos() const { return pos_; }

 private:
  const MappedFile& file_;
  uint64_t pos_;
};

}  // namespace

bool ZipArchive::looks_like_zip(const uint8_t* data, size_t size) {
  return size >= 4 && data[0] == 0x50 && data[1] == 0x4b && data[2] == 0x03 && data[3] == 0x04;
}

ZipArchive::ZipArchive(std::shared_ptr<MappedFile> file) : file_(std::move(file)) {
  const MappedFile& f = *file_;
  const std::string& path = f.path();
  if (f.size() < 22) throw LoadError(path + ": too short to be a zip archive");

  // The end-of-central-directory record sits in the last 22 + 65535 bytes.
  int64_t eocd = -1;
  const int64_t lowest = std::max<int64_t>(0, static_cast<int64_t>(f.size()) - 22 - 65535);
  for (int64_t pos = static_cast<int64_t>(f.size()) - 22; pos >= lowest; --pos) {
    if (Cursor(f, pos).read(4) == kEndOfCentralDir) {
      eocd = pos;
      break;
    }
  }
  if (eocd < 0) throw LoadError(path + ": no zip end-of-central-directory record (truncated?)");

  Cursor end(f, eocd + 10);
  uint64_t entries = end.read(2);
  end.skip(4);  // central directory size
  uint64_t cd_offset = end.read(4);
  if (entries == 0xFFFF || cd_offset == 0xFFFFFFFF) {
    if (eocd < 20) throw LoadError(path + ": zip64 locator missing");
    Cursor locator(f, eocd - 20);
    if (locator.read(4) != kZip64Locator) throw LoadError(path + ": zip64 locator missing");
    locator.skip(4);
    Cursor end64(f, locator.read(8));
    if (end64.read(4) != kZip64EndOfCentralDir)
      throw LoadError(path + ": zip64 end-of-central-directory record missing");
    end64.skip(8 + 2 + 2 + 4 + 4 + 8);
    entries = end64.read(8);
    end64.skip(8);
    cd_offset = end64.read(8);
  }

  Cursor cd(f, cd_offset);
  for (uint64_t i = 0; i < entries; ++i) {
    if (cd.read(4) != kCentralHeader)
      throw LoadError(path + ": corrupt zip central directory at entry " + std::to_string(i));
    cd.skip(2 + 2 + 2);
    const auto method = static_cast<uint16_t>(cd.read(2));
    cd.skip(2 + 2 + 4);
    uint64_t compressed = cd.read(4);
    uint64_t uncompressed = cd.read(4);
    const uint64_t name_len = cd.read(2), extra_len = cd.read(2), comment_len = cd.read(2);
    cd.skip(2 + 2 + 4);
    uint64_t local_offset = cd.read(4);
    ZipRecord record;
    record.name = cd.read_string(name_len);
    const uint64_t extra_end = cd.pos() + extra_len;
    while (cd.pos() + 4 <= extra_end) {
      const uint64_t id = cd.read(2), len = cd.read(2);
      const uint64_t field_end = cd.pos() + len;
      if (id == 0x0001) {  // zip64: the 0xFFFFFFFF fields, in this order
        if (uncompressed == 0xFFFFFFFF) uncompressed = cd.read(8);
        if (compressed == 0xFFFFFFFF) compressed = cd.read(8);
        if (local_offset == 0xFFFFFFFF) local_offset = cd.read(8);
      }
      cd.seek(field_end);
    }
    cd.seek(extra_end + comment_len);

    Cursor local(f, local_offset);
    if (local.read(4) != kLocalHeader)
      throw LoadError(path + ": zip record '" + record.name + "' has no local header");
    local.skip(22);
    const uint64_t local_name = local.read(2), local_extra = local.read(2);
    record.offset = local_offset + 30 + local_name + local_extra;
    record.size = method == 0 ? uncompressed : compressed;
    record.method = method;
    if (record.offset > f.size() || record.size > f.size() - record.offset)
      throw LoadError(path + ": zip record '" + record.name + "' lies outside the file");
    records_[record.name] = record;
  }
}

const ZipRecord& ZipArchive::stored(const std::string& name) const {
  auto it = records_.find(name);
  if (it == records_.end()) throw LoadError(file_->path() + ": zip record '" + name + "' missing");
  if (it->second.method != 0)
    throw LoadError(file_->path() + ": zip record '" + name + "' is compressed (method " +
                    std::to_string(it->second.method) +
                    "); torch.save writes stored records: re-save the checkpoint with torch.save");
  return it->second;
}

}  // namespace wan::io
