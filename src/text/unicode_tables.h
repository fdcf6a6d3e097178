// Generated Unicode tables (tools/gen_unicode_tables.py writes unicode_tables.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace cada::text::detail {

extern const char* const kUnicodeVersion;
// Two-letter general categories; index 0 is "Cn" (unassigned).
extern const char* const kCategoryNames[30];
// Sorted runs: (first code point << 6) | (word << 5) | category index. A run lasts until the
// next one starts; word is the regex \w property (Alphabetic, Mark, Nd, Pc, Join_Control).
extern const uint32_t kUnicodeRuns[];
extern const size_t kUnicodeRunCount;

// Lowercase of the code points that change under the tokenizers library's Lowercase
// normalizer (UTF-8, one or more code points), sorted by code point.
struct LowercaseEntry {
  uint32_t cp;
  const char* utf8;
};
extern const LowercaseEntry kLowercase[];
extern const size_t kLowercaseCount;
// Code points that the tokenizers library's Unicode normalization leaves unchanged although
// the current Unicode tables map them (its tables are older), sorted.
extern const uint32_t kNormalizationPassthrough[];
extern const size_t kNormalizationPassthroughCount;

}  // namespace cada::text::detail
