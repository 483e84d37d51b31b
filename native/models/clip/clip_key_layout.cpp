#include "models/clip/clip_key_layout.h"

#include <array>
#include <map>
#include <regex>

#include "core/error.h"

namespace wan::models {
namespace {

bool has_key(const io::TensorMap& tensors, const std::string& key) {
  return tensors.find(key) != tensors.end();
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

// Names that differ only by a rename (same tensor, same shape), HF suffix -> official suffix.
const std::map<std::string, std::string>& block_renames() {
  static const std::map<std::string, std::string> renames = {
      {"layer_norm1.weight", "norm1.weight"},   {"layer_norm1.bias", "norm1.bias"},
      {"layer_norm2.weight", "norm2.weight"},   {"layer_norm2.bias", "norm2.bias"},
      {"self_attn.out_proj.weight", "attn.proj.weight"},
      {"self_attn.out_proj.bias", "attn.proj.bias"},
      {"mlp.fc1.weight", "mlp.0.weight"},       {"mlp.fc1.bias", "mlp.0.bias"},
      {"mlp.fc2.weight", "mlp.2.weight"},       {"mlp.fc2.bias", "mlp.2.bias"},
  };
  return renames;
}

const std::map<std::string, std::string>& top_renames() {
  static const std::map<std::string, std::string> renames = {
      {"vision_model.embeddings.patch_embedding.weight", "visual.patch_embedding.weight"},
      {"vision_model.pre_layrnorm.weight", "visual.pre_norm.weight"},
      {"vision_model.pre_layrnorm.bias", "visual.pre_norm.bias"},
      {"vision_model.post_layernorm.weight", "visual.post_norm.weight"},
      {"vision_model.post_layernorm.bias", "visual.post_norm.bias"},
  };
  return renames;
}

constexpr const char* kHfLayerPrefix = "vision_model.encoder.layers.";
constexpr const char* kOfficialBlockPrefix = "visual.transformer.";

}  // namespace

ClipKeyLayout detect_clip_key_layout(const io::TensorMap& tensors, const std::string& origin) {
  if (has_key(tensors, "visual.transformer.0.attn.to_qkv.weight")) return ClipKeyLayout::kOfficial;
  if (has_key(tensors, "vision_model.encoder.layers.0.self_attn.q_proj.weight"))
    return ClipKeyLayout::kHuggingFace;
  if (has_key(tensors, "visual.transformer.resblocks.0.attn.in_proj_weight"))
    throw LoadError(origin +
                    ": open_clip's own key layout (visual.transformer.resblocks.*) is not "
                    "supported; use Wan's models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth "
                    "or ComfyUI's clip_vision_h.safetensors.");
  throw LoadError(origin +
                  ": no CLIP vision tower found; looked for visual.transformer.0.attn.to_qkv.weight "
                  "(Wan checkpoint) and vision_model.encoder.layers.0.self_attn.q_proj.weight "
                  "(Hugging Face / ComfyUI clip vision file).");
}

io::TensorMap to_official_clip_layout(const io::TensorMap& tensors, const std::string& origin) {
  if (detect_clip_key_layout(tensors, origin) == ClipKeyLayout::kOfficial) return tensors;
  return clip_hf_to_official(tensors, origin);
}

io::TensorMap clip_hf_to_official(const io::TensorMap& tensors, const std::string& origin) {
  static const std::regex layer_key(R"(vision_model\.encoder\.layers\.(\d+)\.(.+))");
  io::TensorMap out;
  // q, k, v of each block, gathered before they can be concatenated: index -> {q, k, v}.
  std::map<std::string, std::array<at::Tensor, 3>> qkv_weight, qkv_bias;

  for (const auto& [key, tensor] : tensors) {
    if (auto it = top_renames().find(key); it != top_renames().end()) {
      out[it->second] = tensor;
    } else if (key == "vision_model.embeddings.class_embedding") {
      out["visual.cls_embedding"] = tensor.reshape({1, 1, -1});  // [width] -> [1, 1, width]
    } else if (key == "vision_model.embeddings.position_embedding.weight") {
      out["visual.pos_embedding"] = tensor.unsqueeze(0);  // [tokens, width] -> [1, tokens, width]
    } else if (key == "vision_model.embeddings.position_ids") {
      continue;  // arange buffer of transformers; the official tower has none
    } else if (key == "visual_projection.weight") {
      // nn.Linear stores [embed_dim, width]; the official head is a matrix x @ head.
      out["visual.head"] = tensor.t().contiguous();
    } else if (std::smatch m; std::regex_match(key, m, layer_key)) {
      const std::string index = m[1], rest = m[2];
      const std::string block = kOfficialBlockPrefix + index + ".";
      static const std::array<const char*, 3> kNames = {"q_proj", "k_proj", "v_proj"};
      bool is_qkv = false;
      for (size_t j = 0; j < kNames.size(); ++j) {
        const std::string name = std::string("self_attn.") + kNames[j];
        if (rest == name + ".weight") qkv_weight[index][j] = tensor, is_qkv = true;
        if (rest == name + ".bias") qkv_bias[index][j] = tensor, is_qkv = true;
      }
      if (is_qkv) continue;
      auto renamed = block_renames().find(rest);
      out[renamed != block_renames().end() ? block + renamed->second : key] = tensor;
    } else {
      out[key] = tensor;
    }
  }

  auto concat = [&](const std::map<std::string, std::array<at::Tensor, 3>>& parts,
                    const char* suffix) {
    for (const auto& [index, qkv] : parts) {
      for (size_t j = 0; j < 3; ++j)
        if (!qkv[j].defined())
          throw LoadError(origin + ": " + kHfLayerPrefix + index + ".self_attn." +
                          std::array<const char*, 3>{"q", "k", "v"}[j] + "_proj." + suffix +
                          " is missing (the other projections of that block are present).");
      // The official to_qkv output is viewed as [3, heads, head_dim]: q rows, then k, then v.
      out[std::string(kOfficialBlockPrefix) + index + ".attn.to_qkv." + suffix] =
          at::cat({qkv[0], qkv[1], qkv[2]}, 0);
    }
  };
  concat(qkv_weight, "weight");
  concat(qkv_bias, "bias");
  return out;
}

io::TensorMap clip_official_to_hf(const io::TensorMap& tensors) {
  static const std::regex block_key(R"(visual\.transformer\.(\d+)\.(.+))");
  std::map<std::string, std::string> top_inverse, block_inverse;
  for (const auto& [hf, official] : top_renames()) top_inverse[official] = hf;
  for (const auto& [hf, official] : block_renames()) block_inverse[official] = hf;

  io::TensorMap out;
  for (const auto& [key, tensor] : tensors) {
    if (!starts_with(key, "visual.")) continue;
    if (auto it = top_inverse.find(key); it != top_inverse.end()) {
      out[it->second] = tensor;
    } else if (key == "visual.cls_embedding") {
      out["vision_model.embeddings.class_embedding"] = tensor.reshape({-1});
    } else if (key == "visual.pos_embedding") {
      out["vision_model.embeddings.position_embedding.weight"] = tensor.squeeze(0);
    } else if (key == "visual.head") {
      out["visual_projection.weight"] = tensor.t().contiguous();
    } else if (std::smatch m; std::regex_match(key, m, block_key)) {
      const std::string layer = kHfLayerPrefix + std::string(m[1]) + ".";
      const std::string rest = m[2];
      if (rest == "attn.to_qkv.weight" || rest == "attn.to_qkv.bias") {
        const std::string suffix = rest.substr(rest.rfind('.') + 1);
        const auto parts = tensor.chunk(3, 0);
        out[layer + "self_attn.q_proj." + suffix] = parts[0].contiguous();
        out[layer + "self_attn.k_proj." + suffix] = parts[1].contiguous();
        out[layer + "self_attn.v_proj." + suffix] = parts[2].contiguous();
      } else if (auto inverse = block_inverse.find(rest); inverse != block_inverse.end()) {
        out[layer + inverse->second] = tensor;
      } else {
        out[key] = tensor;
      }
    } else {
      out[key] = tensor;
    }
  }
  return out;
}

}  // namespace wan::models
