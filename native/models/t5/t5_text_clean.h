// Prompt cleaning applied before the T5 tokenizer, as in wan/modules/tokenizers.py with
// clean="whitespace". ftfy.fix_text is reproduced only in part (see fix_text_subset, docs/t5.md).
#pragma once
#include <string>
#include <string_view>

namespace wan::models {

// Python's html.unescape on UTF-8 text: named references from the HTML5 table (with the legacy
// unterminated forms and longest-prefix matching), decimal &#NN; and hex &#xHH; references
// (with the Windows-1252 remapping of 0x80-0x9F, U+FFFD for surrogates / out of range, and
// removal of the code points HTML forbids). Bytes that are not valid UTF-8 pass through.
std::string html_unescape(std::string_view text);

// Every run of Unicode White_Space (what `regex`'s \s matches) becomes one ' '; then
// leading/trailing characters that Python's str.strip() removes are dropped.
std::string collapse_whitespace(std::string_view text);

// Python's str.strip() with no argument (str.isspace: White_Space plus U+001C..U+001F).
std::string strip_python_whitespace(std::string_view text);

// The parts of ftfy.fix_text that SentencePiece's nmt_nfkc normalisation does not already
// cover and that need no statistics: uncurl_quotes (U+02BC, U+2018..U+201B -> ', U+201C..U+201F
// -> ") and remove_terminal_escapes (ESC '[' digits/';' letter). Mojibake repair is not done.
std::string fix_text_subset(std::string_view text);

// Wan's clean="whitespace": fix_text_subset (for ftfy.fix_text), html.unescape twice, strip,
// collapse whitespace, strip.
std::string clean_prompt_whitespace(std::string_view text);

}  // namespace wan::models
