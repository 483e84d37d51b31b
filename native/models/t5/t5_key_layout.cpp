#include "models/t5/t5_key_layout.h"

#include <utility>

#include "core/error.h"

namespace wan::models {
namespace {

constexpr const char* kSpieceModelKey = "spiece_model";
constexpr const char* kHfEmbedding = "shared.weight";
constexpr const char* kHfTiedEmbedding = "encoder.embed_tokens.weight";
constexpr const char* kHfBlockPrefix = "encoder.block.";
constexpr const char* kOfficialBlockPrefix = "blocks.";

// Per-block names: (Hugging Face suffix after "encoder.block.N.", official suffix after
// "blocks.N."). UMT5 gives every block its own relative_attention_bias.
constexpr std::pair<const char*, const char*> kBlockKeys[] = {
    {"layer.0.layer_norm.weight", "norm1.weight"},
    {"layer.0.SelfAttention.q.weight", "attn.q.weight"},
    {"layer.0.SelfAttention.k.weight", "attn.k.weight"},
    {"layer.0.SelfAttention.v.weight", "attn.v.weight"},
    {"layer.0.SelfAttention.o.weight", "attn.o.weight"},
    {"layer.1.layer_norm.weight", "norm2.weight"},
    // Gated GELU: HF's wi_0 goes through the activation (the official gate), wi_1 is linear.
    {"layer.1.DenseReluDense.wi_0.weight", "ffn.gate.0.weight"},
    {"layer.1.DenseReluDense.wi_1.weight", "ffn.fc1.weight"},
    {"layer.1.DenseReluDense.wo.weight", "ffn.fc2.weight"},
    {"layer.0.SelfAttention.relative_attention_bias.weight", "pos_embedding.embedding.weight"},
};

// Top-level names: (Hugging Face, official).
constexpr std::pair<const char*, const char*> kTopKeys[] = {
    {kHfEmbedding, "token_embedding.weight"},
    {"encoder.final_layer_norm.weight", "norm.weight"},
};

// "encoder.block.12.layer.0..." with prefix "encoder.block." -> ("12", "layer.0...").
std::optional<std::pair<std::string, std::string>> split_block_key(const std::string& key,
                                                                   const std::string& prefix) {
  if (key.rfind(prefix, 0) != 0) return std::nullopt;
  const size_t dot = key.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size()) return std::nullopt;
  std::string index = key.substr(prefix.size(), dot - prefix.size());
  if (index.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::make_pair(std::move(index), key.substr(dot + 1));
}

// One key renamed with the tables, direction chosen by `to_official`; unknown keys unchanged.
std::string renamed_key(const std::string& key, bool to_official) {
  const std::string from_prefix = to_official ? kHfBlockPrefix : kOfficialBlockPrefix;
  const std::string to_prefix = to_official ? kOfficialBlockPrefix : kHfBlockPrefix;
  std::string renamed = key;
  for (const auto& [hf, official] : kTopKeys) {
    if (key == (to_official ? hf : official)) renamed = to_official ? official : hf;
  }
  if (auto parts = split_block_key(key, from_prefix)) {
    for (const auto& [hf, official] : kBlockKeys) {
      if (parts->second == (to_official ? hf : official))
        renamed = to_prefix + parts->first + "." + (to_official ? official : hf);
    }
  }
  return renamed;
}

// Scaled fp8 files name a layer's scale "<layer>.scale_weight" (or ".weight_scale"): it follows
// its weight "<layer>.weight" through the renaming.
std::string renamed_key_or_scale(const std::string& key, bool to_official) {
  for (const std::string suffix : {"scale_weight", "weight_scale"}) {
    if (key.size() <= suffix.size() ||
        key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string layer = key.substr(0, key.size() - suffix.size());
    const std::string weight = renamed_key(layer + "weight", to_official);
    return weight.substr(0, weight.size() - std::string("weight").size()) + suffix;
  }
  return renamed_key(key, to_official);
}

// Renames keys with the tables, direction chosen by `to_official`.
io::TensorMap rename(io::TensorMap tensors, bool to_official) {
  io::TensorMap out;
  for (auto& [key, tensor] : tensors)
    out.emplace(renamed_key_or_scale(key, to_official), std::move(tensor));
  return out;
}

}  // namespace

bool is_hf_t5_layout(const io::TensorMap& tensors) {
  if (tensors.count(kHfEmbedding) || tensors.count(kHfTiedEmbedding)) return true;
  for (const auto& [key, tensor] : tensors)
    if (key.rfind(kHfBlockPrefix, 0) == 0) return true;
  return false;
}

io::TensorMap hf_t5_to_official(io::TensorMap tensors) {
  auto tied = tensors.find(kHfTiedEmbedding);
  if (tied != tensors.end()) {
    // Keep one embedding: the tied copy only when "shared.weight" is absent.
    if (tensors.count(kHfEmbedding))
      tensors.erase(tied);
    else
      tensors.emplace(kHfEmbedding, std::move(tensors.extract(tied).mapped()));
  }
  return rename(std::move(tensors), /*to_official=*/true);
}

io::TensorMap official_to_hf_t5(io::TensorMap tensors) {
  return rename(std::move(tensors), /*to_official=*/false);
}

std::optional<std::string> take_spiece_model(io::TensorMap& tensors, const std::string& origin) {
  auto it = tensors.find(kSpieceModelKey);
  if (it == tensors.end()) return std::nullopt;
  const auto bytes = it->second.contiguous();
  if (bytes.dim() != 1 || bytes.scalar_type() != at::kByte)
    throw LoadError(origin + ": tensor '" + kSpieceModelKey +
                    "' should hold the tokenizer as 1-D uint8 bytes, found " +
                    std::string(at::toString(bytes.scalar_type())) + " with " +
                    std::to_string(bytes.dim()) + " dims");
  std::string model(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()),
                    static_cast<size_t>(bytes.numel()));
  tensors.erase(it);
  return model;
}

}  // namespace wan::models
