// Fuzzes the safetensors header parser: any input must parse or throw LoadError, never crash.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    // The file size may claim more than is present, as with a truncated download.
    const uint64_t claimed = size >= 1 ? size + (data[0] & 0x0f) * 8 : size;
    wan::io::parse_safetensors_header(data, size, claimed, "fuzz");
  } catch (const wan::LoadError&) {
  }
  return 0;
}
