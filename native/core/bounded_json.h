// Every JSON document that comes from outside (workflows, --set values, model configurations,
// safetensors headers) is parsed here, with explicit limits, so that no input can exhaust the
// stack (deep nesting), the memory (huge strings) or produce a value the program cannot hold
// (1e400, a 5000-digit integer), and so that every error message is valid UTF-8 to print.
#pragma once
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wan {

struct JsonLimits {
  size_t max_bytes = size_t(64) << 20;        // the whole document
  int max_depth = 256;                        // nested arrays/objects
  size_t max_string_bytes = size_t(16) << 20; // one string or object key
  size_t max_number_chars = 64;               // the text of one number
  size_t max_values = size_t(4) << 20;        // scalars, arrays and objects together
};

// Parses `text` as one JSON document within `limits`. Throws ValidationError "<origin>: ..."
// naming the byte offset for invalid UTF-8, a syntax error, a limit exceeded, a non-finite
// number or an integer outside the 64-bit range. Never returns a partial document.
nlohmann::json parse_json_bounded(std::string_view text, const std::string& origin,
                                  const JsonLimits& limits = {});

// Reads a regular file of at most limits.max_bytes (a FIFO, a device or a directory is refused
// without blocking) and parses it as above. Throws ValidationError naming `path`.
nlohmann::json read_json_file_bounded(const std::string& path, const JsonLimits& limits = {});

// Offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no overlongs, no
// surrogates, at most U+10FFFF), or npos when all of `text` is valid.
size_t find_invalid_utf8(std::string_view text);

// `text` with every invalid UTF-8 byte and every control character shown as \xNN, cut to
// `max_chars` with "..." appended: safe to put in a message that will be printed or dumped.
std::string printable(std::string_view text, size_t max_chars = 200);

}  // namespace wan
