#include "media/embedded_metadata.h"

extern "C" {
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <webp/demux.h>
}

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "media/output_files.h"

namespace wan::media {
namespace {

void append_escaped(std::string& out, const std::string& text) {
  static const char* kHex = "0123456789abcdef";
  auto put_u16 = [&](uint32_t unit) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(unit >> shift) & 0xF];
  };
  out += '"';
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size();
  for (size_t i = 0; i < n;) {
    unsigned char c = s[i];
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          // ensure_ascii escapes everything outside ' '..'~'.
          if (c < 0x20 || c == 0x7f) put_u16(c); else out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // Decode one UTF-8 sequence; an invalid one becomes U+FFFD (Python text is always valid).
    int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : -1;
    uint32_t cp = extra == 3 ? c & 0x07 : extra == 2 ? c & 0x0F : c & 0x1F;
    bool ok = extra > 0;
    for (int k = 1; ok && k <= extra; ++k) {
      if (i + k >= n || (s[i + k] & 0xC0) != 0x80) ok = false;
      else cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (!ok || cp > 0x10FFFF) {
      put_u16(0xFFFD);
      ++i;
      continue;
    }
    if (cp >= 0x10000) {  // UTF-16 surrogate pair, as json.dumps writes it
      cp -= 0x10000;
      put_u16(0xD800 + (cp >> 10));
      put_u16(0xDC00 + (cp & 0x3FF));
    } else {
      put_u16(cp);
    }
    i += static_cast<size_t>(extra) + 1;
  }
  out += '"';
}

// Recursive, but never deeper than kMaxMetadataDepth: the validator refuses deeper prompt nodes
// before anything runs, and this guard turns anything else into an error instead of a crash.
template <typename Json>
void dump(std::string& out, const Json& v, int depth) {
  using Type = typename Json::value_t;
  if (depth > kMaxMetadataDepth)
    throw Error("output metadata nests deeper than " + std::to_string(kMaxMetadataDepth) +
                " levels; it cannot be embedded");
  switch (v.type()) {
    case Type::object: {
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ", ";
        first = false;
        append_escaped(out, it.key());
        out += ": ";
        dump(out, it.value(), depth + 1);
      }
      out += '}';
      break;
    }
    case Type::array: {
      out += '[';
      bool first = true;
      for (const auto& item : v) {
        if (!first) out += ", ";
        first = false;
        dump(out, item, depth + 1);
      }
      out += ']';
      break;
    }
    case Type::string: append_escaped(out, v.template get_ref<const std::string&>()); break;
    case Type::number_float: {
      double d = v.template get<double>();
      // json.dumps spells non-finite floats the JavaScript way (allow_nan=True).
      if (std::isnan(d)) out += "NaN";
      else if (std::isinf(d)) out += d > 0 ? "Infinity" : "-Infinity";
      else out += v.dump();  // shortest round-trip digits, "1.0" for integral values, like repr
      break;
    }
    default: out += v.dump();  // null, booleans, integers
  }
}

uint16_t rd16(const uint8_t* p, bool le) { return le ? p[0] | p[1] << 8 : p[0] << 8 | p[1]; }
uint32_t rd32(const uint8_t* p, bool le) {
  return le ? uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24
            : uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}
uint32_t rd32be(const uint8_t* p) { return rd32(p, false); }

// Visits each IFD0 entry: (tag, type, count, pointer to the value bytes or nullptr when out of range).
template <typename Fn>
void for_each_ifd0_entry(const uint8_t* data, size_t size, Fn&& fn) {
  if (size >= 6 && std::memcmp(data, "Exif\0\0", 6) == 0) {
    data += 6;
    size -= 6;
  }
  if (size < 8) return;
  bool le;
  if (data[0] == 'I' && data[1] == 'I') le = true;
  else if (data[0] == 'M' && data[1] == 'M') le = false;
  else return;
  if (rd16(data + 2, le) != 42) return;
  uint64_t ifd = rd32(data + 4, le);
  if (ifd + 2 > size) return;
  uint16_t count = rd16(data + ifd, le);
  for (uint16_t i = 0; i < count; ++i) {
    uint64_t entry = ifd + 2 + uint64_t(i) * 12;
    if (entry + 12 > size) return;
    const uint8_t* e = data + entry;
    uint16_t tag = rd16(e, le), type = rd16(e + 2, le);
    uint32_t n = rd32(e + 4, le);
    static const int kTypeSize[] = {0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8};
    uint64_t bytes = type < 13 ? uint64_t(kTypeSize[type]) * n : 0;
    const uint8_t* value = nullptr;
    if (bytes <= 4) {
      value = e + 8;
    } else {
      uint64_t offset = rd32(e + 8, le);
      if (offset + bytes <= size) value = data + offset;
    }
    fn(tag, type, n, value, le);
  }
}

OutputMetadata metadata_from_key_values(const std::vector<std::pair<std::string, std::string>>& kv) {
  OutputMetadata out;
  for (const auto& [key, value] : kv) {
    if (key == "prompt" && !out.prompt) out.prompt = value;
    else out.extra.emplace_back(key, value);
  }
  return out;
}

bool is_json_container(const std::string& text) {
  return !text.empty() && (text[0] == '{' || text[0] == '[');
}

OutputMetadata read_png_metadata(const std::vector<uint8_t>& bytes, const std::string& path) {
  std::vector<std::pair<std::string, std::string>> kv;
  for (const PngChunk& chunk : png_chunks(bytes.data(), bytes.size(), path)) {
    if (chunk.type != "tEXt") continue;
    const char* p = reinterpret_cast<const char*>(chunk.data);
    const void* nul = std::memchr(p, 0, chunk.size);
    if (!nul) continue;
    size_t key_len = static_cast<const char*>(nul) - p;
    kv.emplace_back(std::string(p, key_len), std::string(p + key_len + 1, chunk.size - key_len - 1));
  }
  return metadata_from_key_values(kv);
}

OutputMetadata read_webp_metadata(const std::vector<uint8_t>& bytes, const std::string& path) {
  WebPData data{bytes.data(), bytes.size()};
  WebPDemuxer* demux = WebPDemux(&data);
  if (!demux) throw LoadError(path + ": not a valid WebP file (the demuxer rejected it)");
  std::vector<TiffAsciiTag> tags;
  WebPChunkIterator it;
  if (WebPDemuxGetChunk(demux, "EXIF", 1, &it)) {
    tags = parse_tiff_ascii(it.chunk.bytes, it.chunk.size);
    WebPDemuxReleaseChunkIterator(&it);
  }
  WebPDemuxDelete(demux);
  // ComfyUI numbers extras downwards from 0x010F, so descending tag order is insertion order.
  std::sort(tags.begin(), tags.end(), [](const auto& a, const auto& b) { return a.tag > b.tag; });
  std::vector<std::pair<std::string, std::string>> kv;
  for (const auto& tag : tags) {
    size_t colon = tag.value.find(':');
    if (colon == std::string::npos || colon == 0) continue;
    std::string key = tag.value.substr(0, colon), json = tag.value.substr(colon + 1);
    bool identifier = std::all_of(key.begin(), key.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
    // Ordinary camera tags ("Canon", "ILCE-7M3") never look like "<key>:{...}".
    if (identifier && is_json_container(json)) kv.emplace_back(key, json);
  }
  return metadata_from_key_values(kv);
}

OutputMetadata read_container_metadata(const std::string& path) {
  AVFormatContext* fmt = nullptr;
  int rc = avformat_open_input(&fmt, path.c_str(), nullptr, nullptr);
  if (rc < 0) {
    char reason[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(rc, reason, sizeof(reason));
    throw LoadError(path + ": cannot open as a video container (" + reason + ")");
  }
  std::vector<std::pair<std::string, std::string>> kv;
  const AVDictionaryEntry* entry = nullptr;
  while ((entry = av_dict_get(fmt->metadata, "", entry, AV_DICT_IGNORE_SUFFIX))) {
    std::string key = entry->key, value = entry->value;
    // Skip the container's own tags (major_brand, encoder, ...): ComfyUI's entries are JSON.
    if (key == "prompt" || is_json_container(value)) kv.emplace_back(key, value);
  }
  avformat_close_input(&fmt);
  return metadata_from_key_values(kv);
}

}  // namespace

std::optional<std::string> OutputMetadata::find(const std::string& key) const {
  if (key == "prompt") return prompt;
  for (const auto& [k, v] : extra)
    if (k == key) return v;
  return std::nullopt;
}

std::string comfy_json_dumps(const nlohmann::ordered_json& value) {
  std::string out;
  dump(out, value, 0);
  return out;
}

std::string comfy_json_dumps_sorted(const nlohmann::json& value) {
  std::string out;
  dump(out, value, 0);
  return out;
}

OutputMetadata read_embedded_metadata(const std::string& path) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), "\x89PNG\r\n\x1a\n", 8) == 0)
    return read_png_metadata(bytes, path);
  if (bytes.size() >= 12 && std::memcmp(bytes.data(), "RIFF", 4) == 0 &&
      std::memcmp(bytes.data() + 8, "WEBP", 4) == 0)
    return read_webp_metadata(bytes, path);
  return read_container_metadata(path);
}

std::vector<PngChunk> png_chunks(const uint8_t* data, size_t size, const std::string& origin) {
  if (size < 8 || std::memcmp(data, "\x89PNG\r\n\x1a\n", 8) != 0)
    throw LoadError(origin + ": not a PNG file (bad signature)");
  std::vector<PngChunk> chunks;
  size_t pos = 8;
  while (pos + 8 <= size) {
    uint32_t length = rd32be(data + pos);
    if (uint64_t(pos) + 12 + length > size)
      throw LoadError(origin + ": PNG chunk at byte " + std::to_string(pos) + " claims " +
                      std::to_string(length) + " bytes past the end of the file (truncated?)");
    PngChunk chunk;
    chunk.type.assign(reinterpret_cast<const char*>(data + pos + 4), 4);
    chunk.data = data + pos + 8;
    chunk.size = length;
    chunks.push_back(chunk);
    pos += 12 + size_t(length);
    if (chunk.type == "IEND") break;
  }
  return chunks;
}

std::vector<uint8_t> build_tiff_ascii(std::vector<TiffAsciiTag> tags) {
  std::sort(tags.begin(), tags.end(), [](const auto& a, const auto& b) { return a.tag < b.tag; });
  std::vector<uint8_t> out = {'I', 'I', 42, 0, 8, 0, 0, 0};
  auto put16 = [&](uint16_t v) { out.push_back(v & 0xFF); out.push_back(v >> 8); };
  auto put32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back((v >> (8 * i)) & 0xFF);
  };
  auto count = static_cast<uint16_t>(tags.size());
  // Values longer than 4 bytes follow the directory (2 + 12n bytes + 4 for the next-IFD link).
  uint32_t data_offset = 8 + 2 + 12 * uint32_t(count) + 4;
  std::vector<uint8_t> values;
  put16(count);
  for (const auto& tag : tags) {
    uint32_t n = static_cast<uint32_t>(tag.value.size() + 1);  // ASCII counts its NUL
    put16(tag.tag);
    put16(2);  // ASCII
    put32(n);
    if (n <= 4) {
      for (uint32_t i = 0; i < 4; ++i) out.push_back(i < tag.value.size() ? tag.value[i] : 0);
    } else {
      put32(data_offset + static_cast<uint32_t>(values.size()));
      values.insert(values.end(), tag.value.begin(), tag.value.end());
      values.push_back(0);
      if (values.size() % 2) values.push_back(0);  // TIFF word alignment, as Pillow pads
    }
  }
  put32(0);  // no next IFD
  out.insert(out.end(), values.begin(), values.end());
  return out;
}

std::vector<TiffAsciiTag> parse_tiff_ascii(const uint8_t* data, size_t size) {
  std::vector<TiffAsciiTag> tags;
  for_each_ifd0_entry(data, size, [&](uint16_t tag, uint16_t type, uint32_t n, const uint8_t* v,
                                      bool) {
    if (type != 2 || !v || n == 0) return;
    const char* s = reinterpret_cast<const char*>(v);
    size_t len = strnlen(s, n);
    tags.push_back({tag, std::string(s, len)});
  });
  return tags;
}

int tiff_orientation(const uint8_t* data, size_t size) {
  int orientation = 1;
  for_each_ifd0_entry(data, size, [&](uint16_t tag, uint16_t type, uint32_t n, const uint8_t* v,
                                      bool le) {
    if (tag == 0x0112 && type == 3 && n >= 1 && v) {
      int o = rd16(v, le);
      if (o >= 1 && o <= 8) orientation = o;
    }
  });
  return orientation;
}

}  // namespace wan::media
