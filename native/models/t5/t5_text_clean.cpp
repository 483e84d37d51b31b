#include "models/t5/t5_text_clean.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>

namespace wan::models {
namespace {

struct NamedEntity {
  const char* name;
  const char* value;
};

constexpr NamedEntity kEntities[] = {
#include "models/t5/html_entities.inc"
};

// Windows-1252 meanings that HTML gives to numeric references 0x80-0x9F, plus NUL and CR.
struct CharRefRemap {
  uint32_t code;
  const char* value;
};
constexpr CharRefRemap kCharRefRemaps[] = {
    {0x00, "\xEF\xBF\xBD"}, {0x0D, "\r"},           {0x80, "\xE2\x82\xAC"}, {0x81, "\xC2\x81"},
    {0x82, "\xE2\x80\x9A"}, {0x83, "\xC6\x92"},     {0x84, "\xE2\x80\x9E"}, {0x85, "\xE2\x80\xA6"},
    {0x86, "\xE2\x80\xA0"}, {0x87, "\xE2\x80\xA1"}, {0x88, "\xCB\x86"},     {0x89, "\xE2\x80\xB0"},
    {0x8A, "\xC5\xA0"},     {0x8B, "\xE2\x80\xB9"}, {0x8C, "\xC5\x92"},     {0x8D, "\xC2\x8D"},
    {0x8E, "\xC5\xBD"},     {0x8F, "\xC2\x8F"},     {0x90, "\xC2\x90"},     {0x91, "\xE2\x80\x98"},
    {0x92, "\xE2\x80\x99"}, {0x93, "\xE2\x80\x9C"}, {0x94, "\xE2\x80\x9D"}, {0x95, "\xE2\x80\xA2"},
    {0x96, "\xE2\x80\x93"}, {0x97, "\xE2\x80\x94"}, {0x98, "\xCB\x9C"},     {0x99, "\xE2\x84\xA2"},
    {0x9A, "\xC5\xA1"},     {0x9B, "\xE2\x80\xBA"}, {0x9C, "\xC5\x93"},     {0x9D, "\xC2\x9D"},
    {0x9E, "\xC5\xBE"},     {0x9F, "\xC5\xB8"},
};

constexpr uint32_t kReplacementChar = 0xFFFD;
constexpr uint32_t kInvalidByte = 0xFFFFFFFF;  // a byte that does not start valid UTF-8

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Decodes the code point at `pos`; `length` receives its byte count (1 for an invalid byte,
// which is reported as kInvalidByte so callers copy it through unchanged).
uint32_t decode_utf8(std::string_view text, size_t pos, size_t& length) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t lead = byte(pos);
  length = 1;
  if (lead < 0x80) return lead;
  size_t extra = 0;
  uint32_t cp = 0;
  if ((lead & 0xE0) == 0xC0) {
    extra = 1, cp = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    extra = 2, cp = lead & 0x0F;
  } else if ((lead & 0xF8) == 0xF0) {
    extra = 3, cp = lead & 0x07;
  } else {
    return kInvalidByte;
  }
  if (pos + extra >= text.size()) return kInvalidByte;
  for (size_t i = 1; i <= extra; ++i) {
    if ((byte(pos + i) & 0xC0) != 0x80) return kInvalidByte;
    cp = (cp << 6) | (byte(pos + i) & 0x3F);
  }
  length = extra + 1;
  return cp;
}

// Unicode White_Space: what the `regex` module's \s matches in Wan's whitespace_clean.
bool is_white_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

// Python's str.isspace additionally counts the information separators U+001C..U+001F.
bool is_python_space(uint32_t cp) { return is_white_space(cp) || (cp >= 0x1C && cp <= 0x1F); }

const char* find_entity(std::string_view name) {
  const auto* end = std::end(kEntities);
  const auto* it = std::lower_bound(std::begin(kEntities), end, name,
                                    [](const NamedEntity& e, std::string_view key) {
                                      return std::string_view(e.name) < key;
                                    });
  return it != end && std::string_view(it->name) == name ? it->value : nullptr;
}

// What html.unescape substitutes for a numeric reference.
void append_numeric_reference(std::string& out, uint32_t code) {
  for (const auto& remap : kCharRefRemaps) {
    if (remap.code == code) {
      out += remap.value;
      return;
    }
  }
  if ((code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF) {
    append_utf8(out, kReplacementChar);
    return;
  }
  // Code points HTML forbids in character references are dropped.
  const bool forbidden = (code >= 0x01 && code <= 0x08) || code == 0x0B ||
                         (code >= 0x0E && code <= 0x1F) || (code >= 0x7F && code <= 0x9F) ||
                         (code >= 0xFDD0 && code <= 0xFDEF) || (code & 0xFFFE) == 0xFFFE;
  if (!forbidden) append_utf8(out, code);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex_digit(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  return (c | 0x20) - 'a' + 10;
}

// Characters that end a named reference (the class [^\t\n\f <&#;] of html.unescape).
bool ends_name(char c) {
  return c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' ||
         c == ';';
}

// Handles the reference whose '&' is at `amp`; returns the position after it, or amp + 1 with
// a literal '&' appended when nothing there forms a reference.
size_t unescape_at(std::string_view text, size_t amp, std::string& out) {
  const size_t n = text.size();
  size_t pos = amp + 1;
  if (pos < n && text[pos] == '#') {
    size_t digits = pos + 1;
    bool hex = false;
    if (digits + 1 < n && (text[digits] == 'x' || text[digits] == 'X') &&
        is_hex_digit(text[digits + 1])) {
      hex = true;
      ++digits;
    }
    size_t end = digits;
    // Saturate: any value past 0x10FFFF maps to U+FFFD, like Python's unbounded int.
    uint64_t code = 0;
    while (end < n && (hex ? is_hex_digit(text[end]) : is_digit(text[end]))) {
      code = std::min<uint64_t>(code * (hex ? 16 : 10) + (hex ? hex_value(text[end]) : text[end] - '0'),
                                0x110000);
      ++end;
    }
    if (end == digits) {
      out += '&';
      return amp + 1;
    }
    if (end < n && text[end] == ';') ++end;
    append_numeric_reference(out, static_cast<uint32_t>(code));
    return end;
  }

  // A name: 1 to 32 code points, then an optional ';'.
  size_t end = pos, code_points = 0, ascii_prefix = 0;
  bool all_ascii = true;
  while (end < n && code_points < 32 && !ends_name(text[end])) {
    size_t length = 0;
    const uint32_t cp = decode_utf8(text, end, length);
    if (cp >= 0x80) all_ascii = false;
    if (all_ascii) ++ascii_prefix;
    end += length;
    ++code_points;
  }
  if (code_points == 0) {
    out += '&';
    return amp + 1;
  }
  size_t name_cp = code_points;
  if (end < n && text[end] == ';') {
    ++end;
    ++name_cp;
    if (all_ascii) ++ascii_prefix;
  }
  const std::string_view name = text.substr(pos, end - pos);
  if (const char* value = find_entity(name)) {
    out += value;
    return end;
  }
  // The longest prefix (at least 2 characters) that names an entity; the rest stays literal.
  // Names are ASCII, so only prefixes within the leading ASCII run can match.
  for (size_t len = std::min(name_cp - 1, ascii_prefix); len >= 2; --len) {
    if (const char* value = find_entity(name.substr(0, len))) {
      out += value;
      out += name.substr(len);
      return end;
    }
  }
  out += '&';
  out += name;
  return end;
}

}  // namespace

std::string html_unescape(std::string_view text) {
  if (text.find('&') == std::string_view::npos) return std::string(text);
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t amp = text.find('&', pos);
    if (amp == std::string_view::npos) {
      out += text.substr(pos);
      break;
    }
    out += text.substr(pos, amp - pos);
    pos = unescape_at(text, amp, out);
  }
  return out;
}

std::string strip_python_whitespace(std::string_view text) {
  size_t begin = 0, end = text.size();
  while (begin < end) {
    size_t length = 0;
    const uint32_t cp = decode_utf8(text, begin, length);
    if (cp == kInvalidByte || !is_python_space(cp)) break;
    begin += length;
  }
  // Scan backwards to the start of the last code point.
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
    size_t length = 0;
    const uint32_t cp = decode_utf8(text, start, length);
    if (cp == kInvalidByte || start + length != end || !is_python_space(cp)) break;
    end = start;
  }
  return std::string(text.substr(begin, end - begin));
}

std::string collapse_whitespace(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool in_run = false;
  for (size_t pos = 0; pos < text.size();) {
    size_t length = 0;
    const uint32_t cp = decode_utf8(text, pos, length);
    if (cp != kInvalidByte && is_white_space(cp)) {
      if (!in_run) out += ' ';
      in_run = true;
    } else {
      out.append(text.substr(pos, length));
      in_run = false;
    }
    pos += length;
  }
  return strip_python_whitespace(out);
}

std::string fix_text_subset(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    // ANSI terminal escape: ESC '[' (digit | ';')* letter.
    if (text[pos] == '\x1B' && pos + 1 < text.size() && text[pos + 1] == '[') {
      size_t end = pos + 2;
      while (end < text.size() && (is_digit(text[end]) || text[end] == ';')) ++end;
      const char c = end < text.size() ? text[end] : '\0';
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        pos = end + 1;
        continue;
      }
    }
    size_t length = 0;
    const uint32_t cp = decode_utf8(text, pos, length);
    if (cp == 0x02BC || (cp >= 0x2018 && cp <= 0x201B))
      out += '\'';
    else if (cp >= 0x201C && cp <= 0x201F)
      out += '"';
    else
      out.append(text.substr(pos, length));
    pos += length;
  }
  return out;
}

std::string clean_prompt_whitespace(std::string_view text) {
  // basic_clean: ftfy.fix_text (in part), unescape twice so "&amp;lt;" becomes "<", strip;
  // whitespace_clean: collapse runs, strip.
  return collapse_whitespace(
      strip_python_whitespace(html_unescape(html_unescape(fix_text_subset(text)))));
}

}  // namespace wan::models
