#include "models/t5/umt5_text_encoder.h"

#include <c10/core/InferenceMode.h>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "io/tensor_index.h"
#include "models/common/weights.h"
#include "models/t5/t5_key_layout.h"

namespace wan::models {

Umt5TextEncoder::Umt5TextEncoder(T5Tokenizer tokenizer, Umt5Encoder encoder)
    : tokenizer_(std::move(tokenizer)), encoder_(std::move(encoder)) {
  const int64_t vocab = encoder_->config().vocab();
  if (tokenizer_.vocab_size() > vocab)
    throw LoadError("Umt5TextEncoder: the tokenizer has " +
                    std::to_string(tokenizer_.vocab_size()) +
                    " pieces but the encoder's token_embedding has " + std::to_string(vocab) +
                    " rows; the tokenizer belongs to another model");
}

at::Tensor Umt5TextEncoder::encode(const std::string& text) {
  c10::InferenceMode guard;
  const auto ids = tokenizer_.encode(text);
  const auto device = encoder_->parameters().front().device();
  const auto ids_tensor =
      at::tensor(ids, at::TensorOptions().dtype(at::kLong)).unsqueeze(0).to(device);
  return encoder_->forward(ids_tensor)[0];  // [1, L, dim] -> [L, dim]
}

std::vector<at::Tensor> Umt5TextEncoder::encode(const std::vector<std::string>& texts) {
  std::vector<at::Tensor> out;
  out.reserve(texts.size());
  for (const auto& text : texts) out.push_back(encode(text));
  return out;
}

Umt5Encoder load_umt5_encoder(io::TensorMap tensors, const std::string& origin,
                              const Umt5EncoderOptions& options,
                              std::optional<std::string>* spiece_model) {
  auto spiece = take_spiece_model(tensors, origin);
  if (spiece_model) *spiece_model = std::move(spiece);
  const bool hf = is_hf_t5_layout(tensors);
  if (hf) tensors = hf_t5_to_official(std::move(tensors));

  const auto config = Umt5Config::from_tensors(tensors, origin);
  Umt5Encoder encoder(config, options);
  LoadWeightsOptions load_options;
  load_options.dtype = options.dtype();
  load_options.keep_narrower = true;  // fp8 stays fp8; the linear layers cast it per call
  load_weights(*encoder, tensors, origin, load_options);
  encoder->eval();
  int64_t bytes = 0, fp8 = 0;
  for (const auto& item : encoder->named_parameters()) {
    bytes += item.value().numel() * static_cast<int64_t>(item.value().element_size());
    fp8 += item.value().element_size() == 1 && item.value().is_floating_point() ? 1 : 0;
  }
  spdlog::debug("load_umt5_text_encoder: {} ({} layout, {} layers, dim {}, {} heads) -> compute {}, {} fp8 "
               "tensors kept as stored, {} of weights",
               origin, hf ? "Hugging Face" : "official", config.num_layers(), config.dim(),
               config.num_heads(), c10::toString(options.dtype()), fp8, format_bytes(bytes));
  return encoder;
}

Umt5TextEncoder load_umt5_text_encoder(const std::string& weights_path,
                                       const std::string& tokenizer_path, at::ScalarType dtype,
                                       int64_t text_len) {
  std::optional<std::string> spiece;
  auto encoder = load_umt5_encoder(io::load_tensors(weights_path), weights_path,
                                   Umt5EncoderOptions().dtype(dtype), &spiece);
  if (!tokenizer_path.empty())
    return Umt5TextEncoder(T5Tokenizer::from_file(tokenizer_path, text_len), std::move(encoder));
  if (!spiece)
    throw LoadError(weights_path +
                    ": no tokenizer given and the checkpoint has no 'spiece_model' tensor; pass "
                    "the umt5-xxl spiece.model (or its directory) as the tokenizer");
  return Umt5TextEncoder(T5Tokenizer::from_bytes(*spiece, weights_path + ":spiece_model", text_len),
                         std::move(encoder));
}

}  // namespace wan::models
