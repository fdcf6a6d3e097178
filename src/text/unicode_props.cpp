// Lookups in the generated Unicode tables (unicode_tables.cpp).
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "cada/text/unicode.h"
#include "unicode_tables.h"

namespace cada::text {

namespace {

uint32_t run_of(int32_t cp) {
  if (cp < 0 || cp > 0x10FFFF) return 0;
  const uint32_t key = (static_cast<uint32_t>(cp) << 6) | 63u;
  const uint32_t* end = detail::kUnicodeRuns + detail::kUnicodeRunCount;
  const uint32_t* it = std::upper_bound(detail::kUnicodeRuns, end, key);
  return it == detail::kUnicodeRuns ? 0 : *(it - 1);
}

bool in_class(uint32_t run, const std::string& name) {
  if (name == "word") return (run >> 5) & 1u;
  const char* cat = detail::kCategoryNames[run & 31u];
  if (name == "digit") return std::strcmp(cat, "Nd") == 0;
  if (name.size() == 1) return cat[0] == name[0];
  return name == cat;
}

void append_cp(std::string& out, uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "\\x{%X}", cp);
  out += buf;
}

void add_range(std::vector<std::pair<uint32_t, uint32_t>>& out, uint32_t first, uint32_t last) {
  if (first > last) return;
  if (!out.empty() && out.back().second + 1 == first) {
    out.back().second = last;
  } else {
    out.emplace_back(first, last);
  }
}

bool known_class(const std::string& name) {
  if (name == "word" || name == "digit") return true;
  if (name.size() == 1) return std::strchr("LMNPSZC", name[0]) != nullptr;
  if (name.size() != 2) return false;
  for (const char* c : detail::kCategoryNames)
    if (name == c) return true;
  return false;
}

}  // namespace

const char* unicode_category(int32_t cp) { return detail::kCategoryNames[run_of(cp) & 31u]; }

bool is_unicode_word(int32_t cp) { return (run_of(cp) >> 5) & 1u; }

std::vector<std::pair<uint32_t, uint32_t>> unicode_class_ranges(const std::string& name) {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  if (!known_class(name)) return out;
  for (size_t k = 0; k < detail::kUnicodeRunCount; ++k) {
    const uint32_t run = detail::kUnicodeRuns[k];
    if (!in_class(run, name)) continue;
    const uint32_t first = run >> 6;
    const uint32_t last = k + 1 < detail::kUnicodeRunCount ? (detail::kUnicodeRuns[k + 1] >> 6) - 1 : 0x10FFFF;
    // Surrogates cannot appear in a UTF-8 pattern or subject.
    add_range(out, first, std::min<uint32_t>(last, 0xD7FF));
    add_range(out, std::max<uint32_t>(first, 0xE000), last);
  }
  return out;
}

std::string unicode_class_body(const std::string& name) {
  std::string out;
  for (const auto& [first, last] : unicode_class_ranges(name)) {
    append_cp(out, first);
    if (last > first) {
      out += '-';
      append_cp(out, last);
    }
  }
  return out;
}

std::string tokenizers_lowercase(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  const detail::LowercaseEntry* end = detail::kLowercase + detail::kLowercaseCount;
  for (size_t i = 0; i < s.size();) {
    const size_t b = i;
    const int32_t cp = utf8_next(s, i);
    auto it = std::lower_bound(detail::kLowercase, end, static_cast<uint32_t>(cp),
                               [](const detail::LowercaseEntry& e, uint32_t c) { return e.cp < c; });
    if (cp >= 0 && it != end && it->cp == static_cast<uint32_t>(cp)) {
      out += it->utf8;
    } else {
      out.append(s, b, i - b);
    }
  }
  return out;
}

std::string tokenizers_normalize(const std::string& s, const std::string& form) {
  // A pass-through code point is a starter that composes with nothing in tokenizers' tables,
  // so the text around it normalizes independently.
  const uint32_t* end = detail::kNormalizationPassthrough + detail::kNormalizationPassthroughCount;
  std::string out, run;
  for (size_t i = 0; i < s.size();) {
    const size_t b = i;
    const int32_t cp = utf8_next(s, i);
    if (cp >= 0 && std::binary_search(detail::kNormalizationPassthrough, end, static_cast<uint32_t>(cp))) {
      out += unicode_normalize(run, form);
      run.clear();
      out.append(s, b, i - b);
    } else {
      run.append(s, b, i - b);
    }
  }
  return out + unicode_normalize(run, form);
}

}  // namespace cada::text
