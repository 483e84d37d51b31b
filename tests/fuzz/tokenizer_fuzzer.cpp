// Fuzzes the SentencePiece model reader (spiece.model) and segmentation with the model it read:
// any input loads or throws LoadError; encoding never reads out of bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "models/t5/sentencepiece_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto model = wan::models::SentencePieceModel::from_bytes(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    (void)model.encode_ids("A cat walks on the grass, realistic style. \xe4\xb8\x80\xe5\x8f\xaa\xe7\x8c\xab");
  } catch (const wan::LoadError&) {
  }
  return 0;
}
