#include "models/t5/t5_tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iterator>

#include "core/error.h"
#include "io/tensor_index.h"
#include "models/t5/t5_text_clean.h"
#include "test_util.h"

namespace wan::models {
namespace {

using testing::tiny_path;

std::vector<std::string> golden_prompts(const std::string& key = "prompts") {
  const auto metadata = io::read_metadata(tiny_path("goldens/tokenizer.safetensors"));
  return nlohmann::json::parse(metadata.at(key)).get<std::vector<std::string>>();
}

int64_t golden_text_len() {
  const auto metadata = io::read_metadata(tiny_path("goldens/tokenizer.safetensors"));
  return std::stoll(metadata.at("text_len"));
}

T5Tokenizer tiny_tokenizer() {
  return T5Tokenizer::from_file(tiny_path("weights/tokenizer/spiece.model"), golden_text_len());
}

TEST(T5Tokenizer, PaddedIdsAndMaskMatchOfficialExactly) {
  const auto prompts = golden_prompts();
  ASSERT_EQ(prompts.size(), 7u);
  const auto batch = tiny_tokenizer().encode_padded(prompts);
  const auto ids = testing::golden_tensor("tokenizer", "input_ids");
  const auto mask = testing::golden_tensor("tokenizer", "attention_mask");
  for (int64_t i = 0; i < static_cast<int64_t>(prompts.size()); ++i) {
    EXPECT_TRUE(at::equal(batch.ids[i], ids[i])) << "prompt " << i << ": " << prompts[i]
                                                 << "\n got " << batch.ids[i]
                                                 << "\n expected " << ids[i];
    EXPECT_TRUE(at::equal(batch.mask[i], mask[i])) << "prompt " << i;
  }
}

TEST(T5Tokenizer, EncodeIsTheUnpaddedPrefixEndingInEos) {
  const auto prompts = golden_prompts();
  const auto tokenizer = tiny_tokenizer();
  const auto ids = testing::golden_tensor("tokenizer", "input_ids");
  const auto mask = testing::golden_tensor("tokenizer", "attention_mask");
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto tokens = tokenizer.encode(prompts[i]);
    const auto count = mask[i].sum().item<int64_t>();
    ASSERT_EQ(static_cast<int64_t>(tokens.size()), count) << "prompt " << i;
    EXPECT_EQ(tokens.back(), 1) << "EOS is id 1";
    for (int64_t j = 0; j < count; ++j) EXPECT_EQ(tokens[j], ids[i][j].item<int64_t>());
  }
  EXPECT_EQ(tokenizer.encode(""), std::vector<int64_t>{1});
}

TEST(T5Tokenizer, CleanedTextAndPiecesMatchOfficial) {
  const auto prompts = golden_prompts();
  const auto cleaned = golden_prompts("cleaned");
  const auto metadata = io::read_metadata(tiny_path("goldens/tokenizer.safetensors"));
  const auto pieces = nlohmann::json::parse(metadata.at("pieces_before_eos"))
                          .get<std::vector<std::vector<std::string>>>();
  const auto tokenizer = tiny_tokenizer();
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(T5Tokenizer::clean(prompts[i]), cleaned[i]) << "prompt " << i;
    EXPECT_EQ(tokenizer.pieces(prompts[i]), pieces[i]) << "prompt " << i;
  }
}

TEST(T5Tokenizer, LoadsFromSerializedBytesAndDirectory) {
  const auto path = tiny_path("weights/tokenizer/spiece.model");
  std::ifstream file(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const auto from_bytes = T5Tokenizer::from_bytes(bytes, "spiece bytes", 32);
  const auto from_dir = T5Tokenizer::from_file(tiny_path("weights/tokenizer"), 32);
  const auto prompts = golden_prompts();
  const auto reference = tiny_tokenizer();
  for (const auto& prompt : prompts) {
    EXPECT_EQ(from_bytes.encode(prompt), reference.encode(prompt));
    EXPECT_EQ(from_dir.encode(prompt), reference.encode(prompt));
  }
  EXPECT_EQ(from_bytes.vocab_size(), 512);
}

TEST(T5Tokenizer, RejectsMissingOrCorruptModel) {
  EXPECT_THROW(T5Tokenizer::from_file(tiny_path("weights/no_such.model")), LoadError);
  EXPECT_THROW(T5Tokenizer::from_bytes("not a model", "bytes"), LoadError);
  EXPECT_THROW(T5Tokenizer::from_file(tiny_path("weights/tokenizer/spiece.model"), 0),
               ValidationError);
}

TEST(T5Tokenizer, TruncatesToTextLenMinusOneThenEos) {
  const auto tokenizer = T5Tokenizer::from_file(tiny_path("weights/tokenizer/spiece.model"), 5);
  const auto full = tiny_tokenizer().encode("The camera slowly pans across a quiet village");
  const auto ids = tokenizer.encode("The camera slowly pans across a quiet village");
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_EQ(std::vector<int64_t>(ids.begin(), ids.begin() + 4),
            std::vector<int64_t>(full.begin(), full.begin() + 4));
  EXPECT_EQ(ids.back(), tokenizer.eos_id());
}

// Expected values are what Python's html.unescape returns for the same input.
TEST(HtmlUnescape, MatchesPythonHtmlUnescape) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Tom &amp; Jerry", "Tom & Jerry"},
      {"&lt;b&gt;", "<b>"},
      {"&amp;amp;", "&amp;"},
      {"&#65;&#x42;&#X43;", "ABC"},
      {"&#128;", "\xE2\x82\xAC"},
      {"&#0;", "\xEF\xBF\xBD"},
      {"&#xD800;", "\xEF\xBF\xBD"},
      {"&#1114112;", "\xEF\xBF\xBD"},
      {"&#99999999999999999999;", "\xEF\xBF\xBD"},
      {"&#1;x", "x"},
      {"&ampx", "&x"},
      {"&notit;", "\xC2\xACit;"},
      {"&notin;", "\xE2\x88\x89"},
      {"&copy2024", "\xC2\xA9" "2024"},
      {"&#x;", "&#x;"},
      {"&#;", "&#;"},
      {"& amp;", "& amp;"},
      {"&&lt;", "&<"},
      {"&unknown;", "&unknown;"},
      {"&AElig", "\xC3\x86"},
      {"&eacute;t&eacute;", "\xC3\xA9t\xC3\xA9"},
      {"&NotNestedGreaterGreater;", "\xE2\xAA\xA2\xCC\xB8"},
      {"&#65", "A"},
      {"caf&eacute &hellip;", "caf\xC3\xA9 \xE2\x80\xA6"},
      {"&zwnj;|", "\xE2\x80\x8C|"},
      {"&#x1F3AC;", "\xF0\x9F\x8E\xAC"},
      {"&fjlig;", "fj"},
      {"a&b;c", "a&b;c"},
  };
  for (const auto& [input, expected] : cases) EXPECT_EQ(html_unescape(input), expected) << input;
}

TEST(HtmlUnescape, CleanUnescapesTwiceAndCollapsesUnicodeWhitespace) {
  EXPECT_EQ(clean_prompt_whitespace("a &amp;lt;b&amp;gt;"), "a <b>");
  // NBSP, ideographic space and a tab run collapse; U+001F is not \s for `regex` but strip()
  // removes it at the ends.
  EXPECT_EQ(clean_prompt_whitespace("\x1F a\xC2\xA0\xE3\x80\x80\tb \x1F"), "a b");
  EXPECT_EQ(clean_prompt_whitespace("a\x1F" "b"), "a\x1F" "b");
  EXPECT_EQ(clean_prompt_whitespace(" &nbsp;x&#32;&#32;y "), "x y");
  EXPECT_EQ(clean_prompt_whitespace(""), "");
}

// ftfy.fix_text("don\u2019t \u201cgo\u201d \x1b[31mred\x1b[0m") == "don't \"go\" red".
TEST(HtmlUnescape, FixTextSubsetUncurlsQuotesAndDropsTerminalEscapes) {
  EXPECT_EQ(fix_text_subset("don\xE2\x80\x99t \xE2\x80\x9Cgo\xE2\x80\x9D \x1B[31mred\x1B[0m"),
            "don't \"go\" red");
  EXPECT_EQ(fix_text_subset("\x1B[!x keeps \xE2\x80\x94 dash"), "\x1B[!x keeps \xE2\x80\x94 dash");
  EXPECT_EQ(clean_prompt_whitespace("  it\xCA\xBCs &amp;quot;ok&amp;quot; "), "it's \"ok\"");
}

}  // namespace
}  // namespace wan::models
