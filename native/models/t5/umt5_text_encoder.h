// Prompt -> UMT5 context: the T5EncoderModel of the official wan/modules/t5.py (tokenizer,
// encoder, output cut to the real tokens).
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

#include "io/tensor_map.h"
#include "models/t5/t5_tokenizer.h"
#include "models/t5/umt5_encoder.h"

namespace wan::models {

class Umt5TextEncoder {
 public:
  Umt5TextEncoder(T5Tokenizer tokenizer, Umt5Encoder encoder);

  // One prompt -> float32 [L, dim] for its L real tokens (pieces + EOS). Only the real tokens are
  // encoded: the official code masks padded keys, so their outputs are the same.
  at::Tensor encode(const std::string& text);
  std::vector<at::Tensor> encode(const std::vector<std::string>& texts);

  const T5Tokenizer& tokenizer() const { return tokenizer_; }
  Umt5Encoder& encoder() { return encoder_; }

 private:
  T5Tokenizer tokenizer_;
  Umt5Encoder encoder_;
};

// Builds an encoder from checkpoint tensors in either layout: renames Hugging Face T5 keys (and
// their fp8 scales), reads the config off the shapes and loads every parameter (one LoadError
// lists missing / unexpected / mis-shaped keys). fp8 weights, "scaled" ones included, stay fp8
// in memory; the linear layers cast them to `options.dtype()` per call. A "spiece_model" tensor is moved into
// `spiece_model` when given (dropped otherwise).
Umt5Encoder load_umt5_encoder(io::TensorMap tensors, const std::string& origin,
                              const Umt5EncoderOptions& options,
                              std::optional<std::string>* spiece_model = nullptr);

// Loads weights (.pth / .safetensors / index.json) and the tokenizer: `tokenizer_path` is a
// spiece.model file or a directory holding one; when empty the checkpoint's "spiece_model"
// tensor is used. `dtype` is the compute dtype of the linear layers (kFloat for parity,
// kBFloat16 for the real model) and the dtype weights are kept in, except fp8 ones, which stay
// fp8.
Umt5TextEncoder load_umt5_text_encoder(const std::string& weights_path,
                                       const std::string& tokenizer_path, at::ScalarType dtype,
                                       int64_t text_len = 512);

}  // namespace wan::models
