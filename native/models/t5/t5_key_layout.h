// Key layouts of UMT5 encoder checkpoints. The official Wan file (models_t5_umt5-xxl-enc-bf16.pth)
// names tensors after wan/modules/t5.py; ComfyUI's repackaged umt5_xxl files use the Hugging Face
// T5 names ("shared.weight", "encoder.block.N.layer.0.SelfAttention.q.weight", ...) and may carry
// the tokenizer as a uint8 tensor "spiece_model".
#pragma once
#include <optional>
#include <string>

#include "io/tensor_map.h"

namespace wan::models {

// True when the tensors use the Hugging Face T5 names.
bool is_hf_t5_layout(const io::TensorMap& tensors);

// Renames Hugging Face T5 encoder keys to the official names. "encoder.embed_tokens.weight" (a
// tied copy of "shared.weight") is dropped when "shared.weight" is present. A scaled fp8 layer's
// "<layer>.scale_weight" / ".weight_scale" is renamed with its weight. Keys it does not know
// are kept unchanged so that the weight loader reports them as unexpected.
io::TensorMap hf_t5_to_official(io::TensorMap tensors);

// The inverse renaming (official -> Hugging Face T5); unknown keys are kept unchanged.
io::TensorMap official_to_hf_t5(io::TensorMap tensors);

// Removes the "spiece_model" tensor and returns its bytes (a serialized SentencePiece model), or
// nullopt when there is none. Throws LoadError when it is not a 1-D uint8 tensor.
std::optional<std::string> take_spiece_model(io::TensorMap& tensors, const std::string& origin);

}  // namespace wan::models
