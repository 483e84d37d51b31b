// SentencePiece tokenizer for the UMT5 text encoder. Mirrors HuggingfaceTokenizer(name,
// seq_len=text_len, clean="whitespace") of the official wan/modules/tokenizers.py as Wan calls it:
// add_special_tokens=True, truncation to text_len, padding="max_length".
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "models/t5/sentencepiece_model.h"

namespace wan::models {

// Ids and mask of a batch padded to text_len: int64 [B, text_len] each (mask 1 = real token).
struct T5TokenBatch {
  at::Tensor ids;
  at::Tensor mask;
};

class T5Tokenizer {
 public:
  // Loads a SentencePiece model file (spiece.model), or a directory that holds one.
  static T5Tokenizer from_file(const std::string& path, int64_t text_len = 512);
  // Loads a serialized SentencePiece model (e.g. the `spiece_model` uint8 tensor of ComfyUI's
  // repackaged T5). `origin` names the source in error messages.
  static T5Tokenizer from_bytes(const std::string& model_bytes, const std::string& origin,
                                int64_t text_len = 512);

  // The text SentencePiece sees (see clean_prompt_whitespace).
  static std::string clean(const std::string& text);
  // Pieces of the cleaned text, truncated to text_len - 1, then EOS: what the encoder reads.
  std::vector<int64_t> encode(const std::string& text) const;
  // Pieces of the cleaned text as strings, before truncation (for diagnostics).
  std::vector<std::string> pieces(const std::string& text) const;
  // encode() of each text, right-padded with pad_id to text_len.
  T5TokenBatch encode_padded(const std::vector<std::string>& texts) const;

  int64_t text_len() const { return text_len_; }
  int64_t eos_id() const { return eos_id_; }
  int64_t pad_id() const { return pad_id_; }
  int64_t vocab_size() const;

 private:
  T5Tokenizer(SentencePieceModel model, const std::string& origin, int64_t text_len);

  SentencePieceModel model_;
  std::string origin_;
  int64_t text_len_;
  int64_t eos_id_;
  int64_t pad_id_;
};

}  // namespace wan::models
