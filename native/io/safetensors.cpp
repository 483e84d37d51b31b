#include "io/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

#include "core/bounded_json.h"
#include "core/error.h"
#include "io/input_file.h"
#include "io/mapped_file.h"

namespace wan::io {
namespace {

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// No framework tensor has more dimensions (torch allows 64).
constexpr size_t kSafetensorsMaxRank = 64;

[[noreturn]] void fail(const std::string& origin, const std::string& what) {
  throw LoadError(origin + ": invalid safetensors file: " + what);
}

}  // namespace

SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t available,
                                           uint64_t file_size, const std::string& origin) {
  if (available < 8 || file_size < 8) fail(origin, "shorter than the 8-byte header length");
  const uint64_t header_len = read_u64_le(data);
  if (header_len > kSafetensorsMaxHeaderBytes)
    fail(origin, "header length " + std::to_string(header_len) + " exceeds the format's bound of " +
                     std::to_string(kSafetensorsMaxHeaderBytes));
  if (header_len > file_size - 8)
    fail(origin, "header length " + std::to_string(header_len) + " runs past the end of the " +
                     std::to_string(file_size) + "-byte file (truncated?)");
  if (header_len > available - 8) fail(origin, "header not fully available");

  // The header is flat ({name: {dtype, shape, data_offsets}, __metadata__: {k: v}}).
  JsonLimits limits;
  limits.max_bytes = kSafetensorsMaxHeaderBytes;
  limits.max_depth = 8;
  limits.max_string_bytes = kSafetensorsMaxHeaderBytes;
  nlohmann::json json;
  try {
    json = parse_json_bounded(
        std::string_view(reinterpret_cast<const char*>(data + 8), header_len), "header", limits);
  } catch (const ValidationError& e) {
    fail(origin, e.what());
  }
  if (!json.is_object()) fail(origin, "header is not a JSON object");

  SafetensorsHeader header;
  header.data_start = 8 + header_len;
  const uint64_t data_size = file_size - header.data_start;
  for (auto it = json.begin(); it != json.end(); ++it) {
    const std::string& key = it.key();
    const auto& value = it.value();
    if (key == "__metadata__") {
      if (!value.is_object()) fail(origin, "__metadata__ is not an object");
      for (auto m = value.begin(); m != value.end(); ++m) {
        if (!m.value().is_string()) fail(origin, "__metadata__ value '" + m.key() + "' is not a string");
        header.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + key + "'";
    if (!value.is_object()) fail(origin, where + " is not an object");
    const auto dtype = value.find("dtype");
    const auto shape = value.find("shape");
    const auto offsets = value.find("data_offsets");
    if (dtype == value.end() || !dtype->is_string()) fail(origin, where + " has no string dtype");
    if (shape == value.end() || !shape->is_array()) fail(origin, where + " has no shape array");
    if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2)
      fail(origin, where + " has no [begin, end] data_offsets");

    SafetensorsRecord record;
    record.info.name = key;
    record.info.file = origin;
    record.info.dtype = dtype->get<std::string>();
    int64_t element_size = 0;
    try {
      element_size = dtype_size(record.info.dtype);
    } catch (const LoadError&) {
      fail(origin, where + " has unknown dtype '" + record.info.dtype + "'");
    }
    if (shape->size() > kSafetensorsMaxRank)
      fail(origin, where + " has " + std::to_string(shape->size()) + " dimensions (at most " +
                       std::to_string(kSafetensorsMaxRank) + ")");
    uint64_t numel = 1;
    for (const auto& dim : *shape) {
      if (!dim.is_number_unsigned()) fail(origin, where + " has a negative or non-integer dimension");
      const uint64_t d = dim.get<uint64_t>();
      if (d > uint64_t(std::numeric_limits<int64_t>::max()))
        fail(origin, where + " has a dimension of " + std::to_string(d) + " (above 2^63 - 1)");
      if (d > 0 && numel > std::numeric_limits<uint64_t>::max() / 2 / d)
        fail(origin, where + " has a shape whose size overflows");
      numel *= d;
      record.info.shape.push_back(static_cast<int64_t>(d));
    }
    if (!(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned())
      fail(origin, where + " has non-integer data_offsets");
    record.begin = (*offsets)[0].get<uint64_t>();
    record.end = (*offsets)[1].get<uint64_t>();
    if (record.begin > record.end) fail(origin, where + " has begin > end in data_offsets");
    if (record.end > data_size)
      fail(origin, where + " data range [" + std::to_string(record.begin) + ", " +
                       std::to_string(record.end) + ") lies outside the " +
                       std::to_string(data_size) + "-byte data section");
    if (numel > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(element_size) ||
        numel * static_cast<uint64_t>(element_size) != record.end - record.begin)
      fail(origin, where + " shape x dtype size (" + std::to_string(numel) + " x " +
                       std::to_string(element_size) + ") != byte range " +
                       std::to_string(record.end - record.begin));
    header.records.push_back(std::move(record));
  }

  std::sort(header.records.begin(), header.records.end(),
            [](const auto& a, const auto& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  for (size_t i = 1; i < header.records.size(); ++i) {
    const auto& prev = header.records[i - 1];
    const auto& cur = header.records[i];
    if (cur.begin < prev.end && cur.end > cur.begin)
      fail(origin, "tensors '" + prev.info.name + "' and '" + cur.info.name + "' overlap");
  }
  return header;
}

SafetensorsHeader read_safetensors_header(const std::string& path) {
  require_regular_file(path, UINT64_MAX);
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw LoadError(path + ": cannot open");
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  uint8_t len_bytes[8] = {};
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  if (file_size < 8 || !in) fail(path, "shorter than the 8-byte header length");
  const uint64_t header_len = read_u64_le(len_bytes);
  if (header_len > kSafetensorsMaxHeaderBytes || header_len > file_size - 8)
    return parse_safetensors_header(len_bytes, 8, file_size, path);  // throws the precise error
  std::vector<uint8_t> buffer(8 + header_len);
  std::memcpy(buffer.data(), len_bytes, 8);
  in.read(reinterpret_cast<char*>(buffer.data() + 8), static_cast<std::streamsize>(header_len));
  if (!in) fail(path, "cannot read the header");
  return parse_safetensors_header(buffer.data(), buffer.size(), file_size, path);
}

TensorMap load_safetensors(const std::string& path, const LoadOptions& options,
                           std::map<std::string, std::string>* metadata) {
  auto file = MappedFile::open(path);
  const auto header = parse_safetensors_header(file->data(), file->size(), file->size(), path);
  if (metadata) *metadata = header.metadata;
  TensorMap tensors;
  for (const auto& record : header.records) {
    uint8_t* ptr = file->data() + header.data_start + record.begin;
    const auto& dtype = record.info.dtype;
    at::Tensor tensor;
    const auto type = dtype_to_scalar_type(dtype);
    const auto element = static_cast<uintptr_t>(c10::elementSize(type));
    if (record.end == record.begin) {
      tensor = at::empty(record.info.shape, at::TensorOptions().dtype(type));
    } else if (reinterpret_cast<uintptr_t>(ptr) % element == 0) {
      // The tensor's deleter holds the mapping: it stays alive while any view of it does.
      tensor = at::from_blob(
          ptr, record.info.shape, [file](void*) {}, at::TensorOptions().dtype(type));
    } else {
      // Misaligned data (allowed by the format) cannot be viewed safely: copy this one tensor.
      tensor = at::empty(record.info.shape, at::TensorOptions().dtype(type));
      std::memcpy(tensor.data_ptr(), ptr, record.end - record.begin);
    }
    if (options.fp8_as && (type == at::kFloat8_e4m3fn || type == at::kFloat8_e5m2))
      tensor = tensor.to(*options.fp8_as);
    tensors.emplace(record.info.name, std::move(tensor));
  }
  return tensors;
}

void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> contiguous;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    auto t = tensor.detach().cpu().contiguous();
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", scalar_type_to_dtype(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    contiguous.push_back(std::move(t));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data section 8-byte aligned

  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path + ": cannot write (" + std::strerror(errno) + ")");
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(text.size() >> (8 * i));
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& t : contiguous)
      out.write(static_cast<const char*>(t.data_ptr()),
                static_cast<std::streamsize>(t.numel() * t.element_size()));
    if (!out.flush()) {
      std::remove(tmp.c_str());
      throw Error(path + ": write failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot rename the completed file into place");
  }
}

}  // namespace wan::io
