// Fuzzes the restricted unpickler: any input must load or throw LoadError, never crash or run code.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/restricted_unpickler.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using wan::io::PickleValue;
  auto persistent_load = [](const PickleValue& pid, size_t) {
    // A storage of 64 floats, whatever the id says: exercises the tensor-rebuild bounds checks.
    auto storage = std::make_shared<PickleValue>();
    storage->kind = PickleValue::Kind::kStorage;
    storage->text = "F32";
    storage->numel = 64;
    storage->tensor = at::zeros({64});
    (void)pid;
    return storage;
  };
  try {
    wan::io::RestrictedUnpickler(data, size, "fuzz", persistent_load).load();
  } catch (const wan::LoadError&) {
  }
  return 0;
}
