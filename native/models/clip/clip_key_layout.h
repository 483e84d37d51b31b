// Checkpoint layouts of the CLIP vision tower and the conversions between them.
//
// kOfficial: the Wan checkpoint models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth
//   (`visual.patch_embedding.weight`, `visual.transformer.N.attn.to_qkv.weight`, ...).
// kHuggingFace: a transformers CLIPVisionModelWithProjection state dict, which is what ComfyUI's
//   repackaged clip_vision_h.safetensors holds (`vision_model.encoder.layers.N.self_attn.q_proj
//   .weight`, ...; separate q/k/v projections, class embedding without batch dimensions,
//   visual_projection stored transposed).
#pragma once
#include <string>

#include "io/tensor_map.h"

namespace wan::models {

enum class ClipKeyLayout { kOfficial, kHuggingFace };

// Which layout `tensors` use. Throws LoadError naming `origin` and the keys looked for when
// neither is recognised (including open_clip's own `visual.transformer.resblocks.*` layout).
ClipKeyLayout detect_clip_key_layout(const io::TensorMap& tensors, const std::string& origin);

// The tensors in the official layout: returned as they are when already official, converted
// (q/k/v concatenated into to_qkv, ...) when Hugging Face. Keys outside the vision tower are
// passed through unchanged.
io::TensorMap to_official_clip_layout(const io::TensorMap& tensors, const std::string& origin);

// Hugging Face -> official. Throws LoadError when a block lacks one of q/k/v.
io::TensorMap clip_hf_to_official(const io::TensorMap& tensors, const std::string& origin);

// Official -> Hugging Face, for the vision tower (`visual.*`) only; other keys are dropped.
io::TensorMap clip_official_to_hf(const io::TensorMap& tensors);

}  // namespace wan::models
