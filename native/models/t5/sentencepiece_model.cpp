#include "models/t5/sentencepiece_model.h"

#include <algorithm>
#include <cfloat>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace wan::models {
namespace {

// U+2581 LOWER ONE EIGHTH BLOCK: SentencePiece's visible space.
constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";
constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";
// Score penalty of an unknown character relative to the rarest piece (unigram_model.cc).
constexpr float kUnkPenalty = 10.0f;

// ---- Protobuf wire format --------------------------------------------------------------------

enum WireType { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

constexpr size_t kMaxPieceBytes = 4096;

class WireReader {
 public:
  WireReader(std::string_view data, const std::string& origin) : data_(data), origin_(origin) {}
  bool done() const { return pos_ >= data_.size(); }

  // Reads the next field header; returns (field number, wire type).
  std::pair<uint32_t, int> next_field() {
    const uint64_t key = varint();
    return {static_cast<uint32_t>(key >> 3), static_cast<int>(key & 7)};
  }
  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      need(1);
      const auto byte = static_cast<uint8_t>(data_[pos_++]);
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    fail("varint longer than 10 bytes");
  }
  std::string_view bytes() {
    const uint64_t length = varint();
    need(length);
    const auto out = data_.substr(pos_, length);
    pos_ += length;
    return out;
  }
  float fixed32_float() {
    need(4);
    uint32_t bits = 0;
    for (int i = 0; i < 4; ++i) bits |= static_cast<uint32_t>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i);
    pos_ += 4;
    float value;
    std::memcpy(&value, &bits, sizeof(value));
    return value;
  }
  void skip(int wire_type) {
    switch (wire_type) {
      case kVarint: varint(); return;
      case kFixed64: need(8); pos_ += 8; return;
      case kLengthDelimited: bytes(); return;
      case kFixed32: need(4); pos_ += 4; return;
      default: fail("unsupported wire type " + std::to_string(wire_type));
    }
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw LoadError(origin_ + ": not a SentencePiece model (" + what + " at byte " +
                    std::to_string(pos_) + ")");
  }

 private:
  void need(uint64_t count) const {
    if (count > data_.size() - pos_) fail("truncated field");
  }
  std::string_view data_;
  const std::string& origin_;
  size_t pos_ = 0;
};

// ---- UTF-8 as SentencePiece reads it ---------------------------------------------------------

size_t one_char_len(char lead) {
  return "\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4"[(static_cast<uint8_t>(lead)) >> 4];
}

bool is_trail_byte(char c) { return (static_cast<uint8_t>(c) & 0xC0) == 0x80; }

bool is_valid_code_point(uint32_t c) { return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF); }

// Length of a well-formed UTF-8 character at the start of `s`, or 0 when malformed
// (string_util::IsValidDecodeUTF8; a literal U+FFFD counts as well-formed).
size_t valid_utf8_length(std::string_view s) {
  const auto b = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  if (b(0) < 0x80) return 1;
  if (s.size() >= 2 && (b(0) & 0xE0) == 0xC0) {
    const uint32_t cp = ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    if (is_trail_byte(s[1]) && cp >= 0x80 && is_valid_code_point(cp)) return 2;
  } else if (s.size() >= 3 && (b(0) & 0xF0) == 0xE0) {
    const uint32_t cp = ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    if (is_trail_byte(s[1]) && is_trail_byte(s[2]) && cp >= 0x800 && is_valid_code_point(cp))
      return 3;
  } else if (s.size() >= 4 && (b(0) & 0xF8) == 0xF0) {
    const uint32_t cp = ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) |
                        (b(3) & 0x3F);
    if (is_trail_byte(s[1]) && is_trail_byte(s[2]) && is_trail_byte(s[3]) && cp >= 0x10000 &&
        is_valid_code_point(cp))
      return 4;
  }
  return 0;
}

// ---- darts-clone double array (the precompiled charsmap's trie) ------------------------------

bool unit_has_leaf(uint32_t unit) { return ((unit >> 8) & 1) == 1; }
uint32_t unit_value(uint32_t unit) { return unit & ((1U << 31) - 1); }
uint32_t unit_label(uint32_t unit) { return unit & ((1U << 31) | 0xFF); }
uint32_t unit_offset(uint32_t unit) { return (unit >> 10) << ((unit & (1U << 9)) >> 6); }

// Longest key of the trie that prefixes `key`: (length, value), length 0 when none.
std::pair<size_t, uint32_t> longest_prefix(const std::vector<uint32_t>& units,
                                           std::string_view key) {
  std::pair<size_t, uint32_t> best{0, 0};
  if (units.empty()) return best;
  size_t node = unit_offset(units[0]);
  for (size_t i = 0; i < key.size(); ++i) {
    const auto label = static_cast<uint8_t>(key[i]);
    node ^= label;
    if (node >= units.size()) break;
    const uint32_t unit = units[node];
    if (unit_label(unit) != label) break;
    node ^= unit_offset(unit);
    if (unit_has_leaf(unit)) {
      if (node >= units.size()) break;
      best = {i + 1, unit_value(units[node])};
    }
  }
  return best;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}
bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

SentencePieceModel SentencePieceModel::from_bytes(std::string_view bytes,
                                                  const std::string& origin) {
  SentencePieceModel model;
  model.origin_ = origin;
  std::fill(std::begin(model.byte_ids_), std::end(model.byte_ids_), -1);
  int model_type = 1;  // UNIGRAM unless the trainer spec says otherwise

  WireReader reader(bytes, origin);
  while (!reader.done()) {
    const auto [field, wire] = reader.next_field();
    if (field == 1 && wire == kLengthDelimited) {  // repeated SentencePiece pieces
      WireReader piece_reader(reader.bytes(), origin);
      Piece piece;
      while (!piece_reader.done()) {
        const auto [f, w] = piece_reader.next_field();
        if (f == 1 && w == kLengthDelimited) piece.text = std::string(piece_reader.bytes());
        else if (f == 2 && w == kFixed32) piece.score = piece_reader.fixed32_float();
        else if (f == 3 && w == kVarint) piece.type = static_cast<PieceType>(piece_reader.varint());
        else piece_reader.skip(w);
      }
      model.pieces_.push_back(std::move(piece));
    } else if (field == 2 && wire == kLengthDelimited) {  // TrainerSpec
      WireReader spec(reader.bytes(), origin);
      while (!spec.done()) {
        const auto [f, w] = spec.next_field();
        if (f == 3 && w == kVarint) model_type = static_cast<int>(spec.varint());
        else if (f == 24 && w == kVarint) model.treat_whitespace_as_suffix_ = spec.varint() != 0;
        else if (f == 35 && w == kVarint) model.byte_fallback_ = spec.varint() != 0;
        else if (f == 42 && w == kVarint) model.spec_eos_id_ = static_cast<int32_t>(spec.varint());
        else if (f == 43 && w == kVarint) model.spec_pad_id_ = static_cast<int32_t>(spec.varint());
        else spec.skip(w);
      }
    } else if (field == 3 && wire == kLengthDelimited) {  // NormalizerSpec
      WireReader spec(reader.bytes(), origin);
      while (!spec.done()) {
        const auto [f, w] = spec.next_field();
        if (f == 2 && w == kLengthDelimited) {
          const auto blob = spec.bytes();
          // <trie size: uint32 LE><double array units><NUL-separated replacement strings>
          if (blob.size() <= 4) spec.fail("precompiled charsmap too short");
          uint32_t trie_bytes = 0;
          for (int i = 0; i < 4; ++i)
            trie_bytes |= static_cast<uint32_t>(static_cast<uint8_t>(blob[i])) << (8 * i);
          if (trie_bytes > blob.size() - 4 || trie_bytes % 4 != 0)
            spec.fail("precompiled charsmap trie size " + std::to_string(trie_bytes));
          model.charsmap_trie_.resize(trie_bytes / 4);
          for (size_t u = 0; u < model.charsmap_trie_.size(); ++u) {
            uint32_t unit = 0;
            for (int i = 0; i < 4; ++i)
              unit |= static_cast<uint32_t>(static_cast<uint8_t>(blob[4 + 4 * u + i])) << (8 * i);
            model.charsmap_trie_[u] = unit;
          }
          model.charsmap_normalized_ = std::string(blob.substr(4 + trie_bytes));
          model.charsmap_normalized_.push_back('\0');  // every value is NUL-terminated
        } else if (f == 3 && w == kVarint) {
          model.add_dummy_prefix_ = spec.varint() != 0;
        } else if (f == 4 && w == kVarint) {
          model.remove_extra_whitespaces_ = spec.varint() != 0;
        } else if (f == 5 && w == kVarint) {
          model.escape_whitespaces_ = spec.varint() != 0;
        } else {
          spec.skip(w);
        }
      }
    } else {
      reader.skip(wire);
    }
  }

  if (model_type != 1)
    throw LoadError(origin + ": SentencePiece model type " + std::to_string(model_type) +
                    " is not unigram; the UMT5 tokenizer is a unigram model");
  if (model.pieces_.empty()) throw LoadError(origin + ": SentencePiece model has no pieces");

  model.min_score_ = FLT_MAX;
  model.max_score_ = FLT_MIN;  // as unigram_model.cc (user-defined bonus uses it)
  for (int id = 0; id < model.size(); ++id) {
    const auto& piece = model.pieces_[id];
    if (piece.text.empty()) throw LoadError(origin + ": piece " + std::to_string(id) + " is empty");
    // Segmentation tries every piece length at every position: a huge piece makes each prompt
    // cost its length in work. Real vocabularies stay far below this.
    if (piece.text.size() > kMaxPieceBytes)
      throw LoadError(origin + ": piece " + std::to_string(id) + " is " +
                      std::to_string(piece.text.size()) + " bytes long (at most " +
                      std::to_string(kMaxPieceBytes) + ")");
    if (!model.all_ids_.emplace(piece.text, id).second)
      throw LoadError(origin + ": piece '" + piece.text + "' is defined twice");
    switch (piece.type) {
      case PieceType::kNormal:
        model.min_score_ = std::min(model.min_score_, piece.score);
        model.max_score_ = std::max(model.max_score_, piece.score);
        [[fallthrough]];
      case PieceType::kUnused:
        model.segment_ids_.emplace(piece.text, id);
        model.max_piece_bytes_ = std::max(model.max_piece_bytes_, piece.text.size());
        break;
      case PieceType::kUserDefined:
        model.segment_ids_.emplace(piece.text, id);
        model.user_defined_.push_back(piece.text);
        model.max_piece_bytes_ = std::max(model.max_piece_bytes_, piece.text.size());
        break;
      case PieceType::kUnknown:
        if (model.unk_id_ >= 0) throw LoadError(origin + ": two unknown pieces");
        model.unk_id_ = id;
        break;
      case PieceType::kByte: {
        unsigned value = 0;
        if (std::sscanf(piece.text.c_str(), "<0x%02X>", &value) == 1 && value < 256)
          model.byte_ids_[value] = id;
        break;
      }
      case PieceType::kControl:
        break;
      default:
        throw LoadError(origin + ": piece " + std::to_string(id) + " has unknown type " +
                        std::to_string(static_cast<int>(piece.type)));
    }
  }
  if (model.unk_id_ < 0) throw LoadError(origin + ": SentencePiece model has no unknown piece");
  if (model.byte_fallback_) {
    for (int b = 0; b < 256; ++b) {
      if (model.byte_ids_[b] >= 0) continue;
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      throw LoadError(origin + ": byte_fallback is set but byte piece " + name + " is missing");
    }
  }
  return model;
}

int SentencePieceModel::piece_to_id(const std::string& piece) const {
  auto it = all_ids_.find(piece);
  return it == all_ids_.end() ? -1 : it->second;
}

// Normalizer::NormalizePrefix: (replacement, bytes consumed) for the start of `input`.
std::pair<std::string_view, size_t> SentencePieceModel::normalize_prefix(
    std::string_view input) const {
  // User-defined symbols are kept verbatim (longest match).
  size_t user_length = 0;
  for (const auto& symbol : user_defined_)
    if (symbol.size() > user_length && starts_with(input, symbol)) user_length = symbol.size();
  if (user_length > 0) return {input.substr(0, user_length), user_length};

  const auto [length, value] = longest_prefix(charsmap_trie_, input);
  if (length > 0) {
    if (value >= charsmap_normalized_.size())
      throw LoadError(origin_ + ": precompiled charsmap points past its strings");
    return {std::string_view(charsmap_normalized_.c_str() + value), length};
  }
  const size_t char_length = valid_utf8_length(input);
  if (char_length == 0) return {kReplacementChar, 1};  // one malformed byte
  return {input.substr(0, char_length), char_length};
}

std::string SentencePieceModel::normalize(std::string_view input) const {
  std::string out;
  if (input.empty()) return out;
  if (remove_extra_whitespaces_) {  // drop leading spaces
    while (!input.empty()) {
      const auto [replacement, consumed] = normalize_prefix(input);
      if (replacement != " ") break;
      input.remove_prefix(consumed);
    }
  }
  if (input.empty()) return out;

  const std::string_view space = escape_whitespaces_ ? kSpaceSymbol : std::string_view(" ");
  if (!treat_whitespace_as_suffix_ && add_dummy_prefix_) out += space;

  bool is_prev_space = remove_extra_whitespaces_;
  while (!input.empty()) {
    auto [piece, consumed] = normalize_prefix(input);
    while (is_prev_space && starts_with(piece, " ")) piece.remove_prefix(1);
    if (!piece.empty()) {
      for (char c : piece) {
        if (escape_whitespaces_ && c == ' ')
          out += kSpaceSymbol;
        else
          out += c;
      }
      is_prev_space = ends_with(piece, " ");
    }
    input.remove_prefix(consumed);
    if (!remove_extra_whitespaces_) is_prev_space = false;
  }
  if (remove_extra_whitespaces_) {
    while (ends_with(out, space)) out.resize(out.size() - space.size());
  }
  if (treat_whitespace_as_suffix_ && add_dummy_prefix_) out += space;
  return out;
}

// unigram::Model::EncodeOptimized: best path over UTF-8 byte positions; ties keep the candidate
// found first (earliest start, then shortest piece).
std::vector<std::pair<std::string, int>> SentencePieceModel::viterbi(
    std::string_view normalized) const {
  struct BestPath {
    int id = -1;
    float score = 0.0f;
    int starts_at = -1;
  };
  const int size = static_cast<int>(normalized.size());
  const float unk_score = min_score_ - kUnkPenalty;
  std::vector<BestPath> best(size + 1);
  std::string key;
  for (int start = 0; start < size;) {
    const float score_here = best[start].score;
    const int char_len =
        std::min<int>(static_cast<int>(one_char_len(normalized[start])), size - start);
    bool has_single_char = false;
    const int max_len = std::min<int>(static_cast<int>(max_piece_bytes_), size - start);
    for (int len = 1; len <= max_len; ++len) {
      key.assign(normalized.data() + start, len);
      auto it = segment_ids_.find(key);
      if (it == segment_ids_.end()) continue;
      const int id = it->second;
      const auto& piece = pieces_[id];
      if (piece.type == PieceType::kUnused) continue;
      // User-defined symbols get a bonus so that they are always chosen.
      const float score = piece.type == PieceType::kUserDefined
                              ? static_cast<float>(len * max_score_ - 0.1)
                              : piece.score;
      auto& target = best[start + len];
      const float candidate = score + score_here;
      if (target.starts_at == -1 || candidate > target.score) {
        target = {id, candidate, start};
      }
      if (len == char_len) has_single_char = true;
    }
    if (!has_single_char) {
      auto& target = best[start + char_len];
      const float candidate = unk_score + score_here;
      if (target.starts_at == -1 || candidate > target.score) target = {unk_id_, candidate, start};
    }
    start += char_len;
  }
  std::vector<std::pair<std::string, int>> result;
  for (int end = size; end > 0;) {
    const auto& node = best[end];
    result.emplace_back(std::string(normalized.substr(node.starts_at, end - node.starts_at)),
                        node.id);
    end = node.starts_at;
  }
  std::reverse(result.begin(), result.end());
  return result;
}

std::vector<std::pair<std::string, int>> SentencePieceModel::encode(std::string_view text) const {
  const auto normalized = normalize(text);
  std::vector<std::pair<std::string, int>> out;
  if (normalized.empty()) return out;
  bool prev_unknown = false;
  for (auto& [piece, id] : viterbi(normalized)) {
    const bool unknown = id == unk_id_;
    if (unknown && byte_fallback_) {
      // An unknown character is spelled as its UTF-8 bytes.
      for (char c : piece) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", static_cast<uint8_t>(c));
        out.emplace_back(name, byte_ids_[static_cast<uint8_t>(c)]);
      }
    } else if (unknown && prev_unknown) {
      out.back().first += piece;  // runs of unknown characters form one unknown piece
    } else {
      out.emplace_back(std::move(piece), id);
    }
    prev_unknown = unknown;
  }
  return out;
}

std::vector<int> SentencePieceModel::encode_ids(std::string_view text) const {
  std::vector<int> ids;
  for (const auto& [piece, id] : encode(text)) ids.push_back(id);
  return ids;
}

}  // namespace wan::models
