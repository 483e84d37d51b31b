// A self-contained reader and encoder for SentencePiece unigram models (spiece.model).
//
// Debian's libsentencepiece embeds its own protobuf 3.14 runtime and exports its symbols; in a
// process that also loads libprotobuf 3.21 (pulled in by LibTorch) the two interpose and the
// program aborts at start-up or on the first Load(). This file therefore parses the model's
// protobuf wire format directly and implements what SentencePieceProcessor::Encode does for a
// unigram model: precompiled-charsmap normalisation (nmt_nfkc), dummy prefix, whitespace
// escaping, the optimized Viterbi search, and byte fallback.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace wan::models {

class SentencePieceModel {
 public:
  // Parses a serialized ModelProto; throws LoadError naming `origin` when it is not a unigram
  // SentencePiece model.
  static SentencePieceModel from_bytes(std::string_view bytes, const std::string& origin);

  // The text the model segments: normalised, with spaces as U+2581 and the dummy prefix.
  std::string normalize(std::string_view text) const;
  // Best segmentation of the text as (piece, id) pairs, unknown characters spelled as byte
  // pieces when the model has byte fallback.
  std::vector<std::pair<std::string, int>> encode(std::string_view text) const;
  std::vector<int> encode_ids(std::string_view text) const;

  int size() const { return static_cast<int>(pieces_.size()); }
  // Id of a piece (any type), or -1.
  int piece_to_id(const std::string& piece) const;
  const std::string& id_to_piece(int id) const { return pieces_.at(id).text; }
  int unk_id() const { return unk_id_; }
  // Ids declared in the trainer spec (-1 when disabled).
  int spec_eos_id() const { return spec_eos_id_; }
  int spec_pad_id() const { return spec_pad_id_; }

 private:
  enum class PieceType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5,
                         kByte = 6 };
  struct Piece {
    std::string text;
    float score = 0.0f;
    PieceType type = PieceType::kNormal;
  };

  std::pair<std::string_view, size_t> normalize_prefix(std::string_view input) const;
  std::vector<std::pair<std::string, int>> viterbi(std::string_view normalized) const;

  std::string origin_;
  std::vector<Piece> pieces_;
  std::unordered_map<std::string, int> all_ids_;       // every piece
  std::unordered_map<std::string, int> segment_ids_;   // normal, user-defined and unused pieces
  std::vector<std::string> user_defined_;              // matched before normalisation
  size_t max_piece_bytes_ = 0;
  float min_score_ = 0.0f, max_score_ = 0.0f;
  int unk_id_ = -1;
  int byte_ids_[256];
  bool byte_fallback_ = false;
  bool treat_whitespace_as_suffix_ = false;
  int spec_eos_id_ = 2, spec_pad_id_ = -1;
  // Normalizer spec.
  bool add_dummy_prefix_ = true, remove_extra_whitespaces_ = true, escape_whitespaces_ = true;
  std::vector<uint32_t> charsmap_trie_;  // darts-clone double array units
  std::string charsmap_normalized_;      // NUL-separated replacement strings
};

}  // namespace wan::models
