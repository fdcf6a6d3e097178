// Small UTF-8 helpers shared by the tokenizers and chat templates.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cada::text {

// Decodes one code point at s[i]; advances i. Invalid bytes give -1 and advance by one.
int32_t utf8_next(const std::string& s, size_t& i);
// Appends the UTF-8 encoding of cp.
void utf8_append(std::string& out, int32_t cp);
bool is_valid_utf8(const std::string& s);
// Replaces each maximal invalid subsequence with U+FFFD, like Rust's
// String::from_utf8_lossy and Python's bytes.decode("utf-8", "replace").
std::string utf8_lossy(const std::string& bytes);

// Unicode White_Space (what regex \s matches in Oniguruma and Rust).
bool is_unicode_whitespace(int32_t cp);
// Python's str.isspace(): White_Space plus U+001C..U+001F.
bool is_python_whitespace(int32_t cp);
// Python's str.strip() with no arguments (also Jinja's |trim).
std::string python_strip(const std::string& s);

// General category ("Lu", "Nd", ..., "Cn" when unassigned) and the regex word property
// (\w: Alphabetic, Mark, Decimal_Number, Connector_Punctuation, Join_Control) at the Unicode
// version the Hugging Face `tokenizers` library uses (see tools/gen_unicode_tables.py).
const char* unicode_category(int32_t cp);
bool is_unicode_word(int32_t cp);
// The code points of a general category ("L", "Lu", "N", "P", ... one or two letters) or of
// "word" (\w) or "digit" (Nd) as sorted, disjoint [first, last] ranges without surrogates;
// empty for any other name.
std::vector<std::pair<uint32_t, uint32_t>> unicode_class_ranges(const std::string& name);
// The same as a PCRE2 class body ("\x{41}-\x{5A}..."), without brackets; "" for other names.
std::string unicode_class_body(const std::string& name);

// The `tokenizers` library's Lowercase normalizer (Rust's char::to_lowercase per code point)
// and its NFC/NFD/NFKC/NFKD, whose tables are older than utf8proc's: code points they do not
// know pass through unchanged. Valid UTF-8 in and out.
std::string tokenizers_lowercase(const std::string& s);
std::string tokenizers_normalize(const std::string& s, const std::string& form);

// Unicode normalization ("NFC", "NFD", "NFKC", "NFKD") of valid UTF-8.
std::string unicode_normalize(const std::string& s, const std::string& form);

}  // namespace cada::text
