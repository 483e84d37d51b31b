// Fuzzes torch.save checkpoints: the zip reader, the restricted unpickler and the storage
// records, from a file as in a run. Any input loads or throws LoadError.
#include <cstddef>
#include <cstdint>
#include <cstdio>

#include "core/error.h"
#include "fuzz_input.h"
#include "io/torch_zip.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = wan::fuzz::write_scratch(data, size, ".pth");
  try {
    (void)wan::io::read_torch_zip_infos(path);
    (void)wan::io::load_torch_zip(path);
  } catch (const wan::LoadError&) {
  }
  std::remove(path.c_str());
  return 0;
}
