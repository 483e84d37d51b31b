// Fuzzes the bounded JSON parser that every JSON boundary uses (workflows, --set, configs,
// safetensors headers): any input parses within the limits or throws ValidationError, and a
// parsed document can always be dumped and compared (no deep recursion, no invalid UTF-8).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/bounded_json.h"
#include "core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto json = wan::parse_json_bounded(text, "fuzz");
    const std::string dumped = json.dump();
    if (wan::parse_json_bounded(dumped, "fuzz (round trip)") != json) __builtin_trap();
  } catch (const wan::ValidationError& e) {
    if (wan::find_invalid_utf8(e.what()) != std::string_view::npos) __builtin_trap();
  }
  (void)wan::printable(text);
  return 0;
}
