#include "core/bounded_json.h"

#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "io/input_file.h"

namespace wan {
namespace {

using json = nlohmann::json;

// Builds the document through nlohmann's DOM builder and stops at the first limit. The parser
// itself is iterative; the depth bound is for everything that later walks the document
// recursively (dump, comparison, conversion).
class BoundedSax {
 public:
  BoundedSax(json& root, const JsonLimits& limits) : dom_(root, /*allow_exceptions=*/false), limits_(limits) {}

  bool null() { return count() && dom_.null(); }
  bool boolean(bool value) { return count() && dom_.boolean(value); }
  bool number_integer(json::number_integer_t value) { return count() && dom_.number_integer(value); }
  bool number_unsigned(json::number_unsigned_t value) { return count() && dom_.number_unsigned(value); }
  bool number_float(json::number_float_t value, const std::string& text) {
    if (!count()) return false;
    if (text.find_first_of(".eE") == std::string::npos)
      return fail("the integer " + abbreviated(text) + " is outside the 64-bit range");
    if (!std::isfinite(value)) return fail("the number " + abbreviated(text) + " is too large for a double");
    return dom_.number_float(value, text);
  }
  bool string(std::string& value) {
    return count() && check_string(value, "string") && dom_.string(value);
  }
  bool binary(json::binary_t& value) { return count() && dom_.binary(value); }
  bool start_object(std::size_t n) { return open() && dom_.start_object(n); }
  bool key(std::string& value) { return check_string(value, "key") && dom_.key(value); }
  bool end_object() {
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) { return open() && dom_.start_array(n); }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  bool parse_error(std::size_t position, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& e) {
    // nlohmann's message quotes the last token, which may hold any bytes: keep only the reason.
    std::string what = e.what();
    const auto colon = what.find(": ");
    const auto last_read = what.find("; last read");
    if (colon != std::string::npos) what = what.substr(colon + 2, last_read == std::string::npos ? std::string::npos : last_read - colon - 2);
    error_ = "not valid JSON at byte " + std::to_string(position == 0 ? 0 : position - 1) + ": " + printable(what);
    return false;
  }

  const std::string& error() const { return error_; }

 private:
  bool fail(const std::string& what) {
    // The lexer has consumed the offending token; its start is not exposed, so name the limit.
    if (error_.empty()) error_ = what;
    return false;
  }
  bool count() {
    if (++values_ > limits_.max_values)
      return fail("more than " + std::to_string(limits_.max_values) + " values");
    return true;
  }
  bool open() {
    if (!count()) return false;
    if (++depth_ > limits_.max_depth)
      return fail("nested deeper than " + std::to_string(limits_.max_depth) + " levels");
    return true;
  }
  bool check_string(const std::string& value, const char* what) {
    if (value.size() > limits_.max_string_bytes)
      return fail(std::string("a ") + what + " of " + std::to_string(value.size()) +
                  " bytes is longer than the limit of " + std::to_string(limits_.max_string_bytes));
    return true;
  }
  std::string abbreviated(const std::string& text) const {
    if (text.size() <= limits_.max_number_chars) return text;
    return text.substr(0, 16) + "... (" + std::to_string(text.size()) + " characters)";
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  const JsonLimits& limits_;
  int depth_ = 0;
  size_t values_ = 0;
  std::string error_;
};

// Numbers longer than the limit are refused before the lexer converts them.
size_t find_long_number(std::string_view text, size_t max_chars) {
  bool in_string = false;
  size_t run = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
      run = 0;
    } else if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
      if (++run > max_chars) return i + 1 - run;
    } else {
      run = 0;
    }
  }
  return std::string_view::npos;
}

}  // namespace

size_t find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // no overlongs
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;  // at most U+10FFFF
    } else {
      return i;
    }
    if (i + len > n) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return i;
    i += len;
  }
  return std::string_view::npos;
}

std::string printable(std::string_view text, size_t max_chars) {
  std::string out;
  size_t i = 0;
  while (i < text.size() && out.size() < max_chars) {
    const size_t bad = find_invalid_utf8(text.substr(i, 4));
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F || bad == 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", c);
      out += hex;
      ++i;
      continue;
    }
    const size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    out.append(text.substr(i, len));
    i += len;
  }
  if (i < text.size()) out += "...";
  return out;
}

json parse_json_bounded(std::string_view text, const std::string& origin, const JsonLimits& limits) {
  const std::string where = printable(origin, 400);
  if (text.size() > limits.max_bytes)
    throw ValidationError(where + ": " + std::to_string(text.size()) +
                          " bytes of JSON is more than the limit of " +
                          std::to_string(limits.max_bytes));
  if (const size_t bad = find_invalid_utf8(text); bad != std::string_view::npos)
    throw ValidationError(where + ": invalid UTF-8 at byte " + std::to_string(bad) +
                          " (JSON text must be UTF-8)");
  if (const size_t at = find_long_number(text, limits.max_number_chars); at != std::string_view::npos)
    throw ValidationError(where + ": the number at byte " + std::to_string(at) + " is longer than " +
                          std::to_string(limits.max_number_chars) + " characters");
  json root;
  BoundedSax sax(root, limits);
  const bool ok = json::sax_parse(text.begin(), text.end(), &sax, nlohmann::detail::input_format_t::json,
                                  /*strict=*/true, /*ignore_comments=*/false);
  if (!ok || !sax.error().empty()) {
    throw ValidationError(where + ": " + (sax.error().empty() ? "not valid JSON" : sax.error()));
  }
  return root;
}

json read_json_file_bounded(const std::string& path, const JsonLimits& limits) {
  std::string text;
  try {
    text = io::read_regular_file(path, limits.max_bytes);
  } catch (const LoadError& e) {
    throw ValidationError(e.what());
  }
  return parse_json_bounded(text, path, limits);
}

}  // namespace wan
