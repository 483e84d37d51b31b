#include "models/t5/t5_tokenizer.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "io/input_file.h"
#include "models/t5/t5_text_clean.h"

namespace wan::models {
namespace {

// HF's T5 tokenizer appends "</s>" and pads with "<pad>"; the trainer-spec ids are the fallback
// for models that name them differently.
constexpr const char* kEosPiece = "</s>";
constexpr const char* kPadPiece = "<pad>";

}  // namespace

T5Tokenizer::T5Tokenizer(SentencePieceModel model, const std::string& origin, int64_t text_len)
    : model_(std::move(model)), origin_(origin), text_len_(text_len) {
  if (text_len < 1)
    throw ValidationError(origin + ": text_len " + std::to_string(text_len) +
                          " must be at least 1 (room for the EOS token)");
  eos_id_ = model_.piece_to_id(kEosPiece);
  if (eos_id_ < 0) eos_id_ = model_.spec_eos_id();
  if (eos_id_ < 0 || eos_id_ >= model_.size())
    throw LoadError(origin + ": SentencePiece model defines no EOS piece '</s>'; T5 needs one");
  pad_id_ = model_.piece_to_id(kPadPiece);
  if (pad_id_ < 0) pad_id_ = model_.spec_pad_id();
  if (pad_id_ < 0 || pad_id_ >= model_.size())
    throw LoadError(origin + ": SentencePiece model defines no pad piece '<pad>'");
}

T5Tokenizer T5Tokenizer::from_file(const std::string& path, int64_t text_len) {
  std::string file = path;
  if (std::filesystem::is_directory(path)) file = (std::filesystem::path(path) / "spiece.model");
  std::error_code ec;
  if (!std::filesystem::exists(file, ec))
    throw LoadError(file + ": tokenizer model not found; pass the spiece.model of umt5-xxl "
                           "(or the directory that holds it)");
  // umt5-xxl's spiece.model is 4.5 MB; the bound only keeps a wrong file from being read whole.
  const std::string bytes = io::read_regular_file(file, uint64_t(256) << 20);
  auto model = SentencePieceModel::from_bytes(bytes, file);
  spdlog::debug("T5Tokenizer: {} ({} pieces)", file, model.size());
  return T5Tokenizer(std::move(model), file, text_len);
}

T5Tokenizer T5Tokenizer::from_bytes(const std::string& model_bytes, const std::string& origin,
                                    int64_t text_len) {
  return T5Tokenizer(SentencePieceModel::from_bytes(model_bytes, origin), origin, text_len);
}

std::string T5Tokenizer::clean(const std::string& text) { return clean_prompt_whitespace(text); }

int64_t T5Tokenizer::vocab_size() const { return model_.size(); }

std::vector<std::string> T5Tokenizer::pieces(const std::string& text) const {
  std::vector<std::string> out;
  for (auto& [piece, id] : model_.encode(clean(text))) out.push_back(std::move(piece));
  return out;
}

std::vector<int64_t> T5Tokenizer::encode(const std::string& text) const {
  const auto pieces = model_.encode_ids(clean(text));
  // HF truncation keeps room for the EOS that add_special_tokens appends.
  const size_t keep = std::min<size_t>(pieces.size(), static_cast<size_t>(text_len_ - 1));
  if (pieces.size() > keep)
    spdlog::debug("T5Tokenizer: prompt of {} tokens truncated to {}", pieces.size() + 1,
                  text_len_);
  std::vector<int64_t> ids(pieces.begin(), pieces.begin() + keep);
  ids.push_back(eos_id_);
  return ids;
}

T5TokenBatch T5Tokenizer::encode_padded(const std::vector<std::string>& texts) const {
  const auto batch = static_cast<int64_t>(texts.size());
  auto ids = at::full({batch, text_len_}, pad_id_, at::kLong);
  auto mask = at::zeros({batch, text_len_}, at::kLong);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < batch; ++b) {
    const auto tokens = encode(texts[b]);
    for (size_t i = 0; i < tokens.size(); ++i) {
      ids_a[b][i] = tokens[i];
      mask_a[b][i] = 1;
    }
  }
  return {ids, mask};
}

}  // namespace wan::models
