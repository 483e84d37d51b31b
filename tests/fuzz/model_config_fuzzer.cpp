// Fuzzes the model configuration reader and its typed getters: any input is read or refused
// with LoadError; a value of the wrong type is never silently taken.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "models/common/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using wan::models::ModelConfig;
  try {
    const auto config = ModelConfig::parse(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    for (const char* key : {"dim", "num_heads", "text_len", "num_layers", "ffn_dim"}) {
      try {
        (void)config.integer(key, 1, wan::models::kMaxConfigDim);
      } catch (const wan::LoadError&) {
      }
    }
    try {
      (void)config.number("eps", 0.0, 1.0);
      (void)config.string("model_type");
      (void)config.boolean("qk_norm");
      (void)config.integers("vace_layers", 0, 64, 64);
      if (auto vision = config.object("vision_config")) (void)vision->integer("hidden_size", 1, 1 << 16);
    } catch (const wan::LoadError&) {
    }
  } catch (const wan::LoadError&) {
  }
  return 0;
}
