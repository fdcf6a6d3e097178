// PCRE2 runner for the Oniguruma-flavoured split patterns of tokenizer.json files.
#include <pcre2.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>

#include "cada/text/unicode.h"
#include "cada/util/error.h"
#include "internal.h"

namespace cada::text::detail {

namespace {

// Unicode White_Space: what Oniguruma's \s matches for UTF-8 (PCRE2's \s lacks U+0085).
const char* const kWhiteSpaceRanges =
    "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

struct MatchData {
  pcre2_match_data* md = nullptr;
  pcre2_jit_stack* stack = nullptr;
  pcre2_match_context* ctx = nullptr;
  MatchData() {
    md = pcre2_match_data_create(16, nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    ctx = pcre2_match_context_create(nullptr);
    if (ctx && stack) pcre2_jit_stack_assign(ctx, nullptr, stack);
  }
  ~MatchData() {
    if (md) pcre2_match_data_free(md);
    if (ctx) pcre2_match_context_free(ctx);
    if (stack) pcre2_jit_stack_free(stack);
  }
};

MatchData& thread_match_data() {
  thread_local MatchData data;
  return data;
}

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

// Every code point but the surrogates, in order, as UTF-8 (about 4.3 MB, built once).
const std::string& all_code_points() {
  static const std::string text = [] {
    std::string s;
    s.reserve(4400000);
    for (int32_t cp = 0; cp <= 0x10FFFF; ++cp)
      if (cp < 0xD800 || cp > 0xDFFF) utf8_append(s, cp);
    return s;
  }();
  return text;
}

// The code point at byte offset `off` of all_code_points().
uint32_t code_point_at(size_t off) {
  if (off < 0x80) return static_cast<uint32_t>(off);
  if (off < 0x80 + 2 * 0x780) return static_cast<uint32_t>(0x80 + (off - 0x80) / 2);
  const size_t three = 0x80 + 2 * 0x780;  // first 3-byte code point, U+0800
  const size_t three_end = three + 3 * (0x10000 - 0x800 - 0x800);
  if (off < three_end) {
    uint32_t cp = static_cast<uint32_t>(0x800 + (off - three) / 3);
    return cp >= 0xD800 ? cp + 0x800 : cp;
  }
  return static_cast<uint32_t>(0x10000 + (off - three_end) / 4);
}

// The code points PCRE2's own tables put in a property (e.g. "\\p{L}"); false when PCRE2
// cannot say (the caller then writes the class out).
bool pcre2_ranges(const std::string& property, Ranges& out) {
  const std::string pattern = property + "++";  // possessive: no backtracking state per character
  int err = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &err, &offset, nullptr);
  CADA_CHECK(code != nullptr, "cannot compile the property '", property, "'");
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
  const std::string& text = all_code_points();
  bool ok = true;
  for (size_t pos = 0; pos < text.size();) {
    const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos,
                               PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc < 0) {
      ok = rc == PCRE2_ERROR_NOMATCH;
      break;
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    if (ov[1] <= ov[0]) break;
    out.emplace_back(code_point_at(ov[0]), code_point_at(ov[1] - 1));
    pos = ov[1];
  }
  pcre2_match_data_free(md);
  pcre2_code_free(code);
  return ok;
}

void set_bits(std::vector<bool>& bits, const Ranges& r) {
  for (const auto& [a, b] : r)
    for (uint32_t cp = a; cp <= b; ++cp) bits[cp] = true;
}

std::string format_ranges(const Ranges& r) {
  std::string out;
  char buf[40];
  for (const auto& [a, b] : r) {
    if (a == b) {
      std::snprintf(buf, sizeof(buf), "\\x{%X}", a);
    } else {
      std::snprintf(buf, sizeof(buf), "\\x{%X}-\\x{%X}", a, b);
    }
    out += buf;
  }
  return out;
}

// A class body for a general category ("L", "Nd", ...), "word" or "digit" at the Unicode
// version of `tokenizers` (the generated tables). Written out range by range a class is slow
// to match (PCRE2 tests the ranges one by one), so where PCRE2's own property is a subset of
// it (PCRE2's Unicode is not newer) `exact` is that property plus the code points it lacks
// (`differ`), and `fast`, the property alone, matches the same on text without those. \w
// differs from PCRE2's \w by definition and is always written out.
struct ClassBody {
  std::string exact, fast;
  Ranges differ;
};

ClassBody build_class_body(const std::string& name) {
  const Ranges ours = unicode_class_ranges(name);
  ClassBody out;
  out.exact = out.fast = format_ranges(ours);
  if (ours.empty() || name == "word") return out;
  const std::string property = "\\p{" + std::string(name == "digit" ? "Nd" : name) + "}";
  std::vector<bool> in_ours(0x110000, false), in_theirs(0x110000, false);
  set_bits(in_ours, ours);
  Ranges theirs;
  if (!pcre2_ranges(property, theirs)) return out;
  set_bits(in_theirs, theirs);
  Ranges extra;
  for (uint32_t cp = 0; cp < 0x110000; ++cp) {
    if (in_theirs[cp] && !in_ours[cp]) return out;
    if (!in_ours[cp] || in_theirs[cp]) continue;
    if (!extra.empty() && extra.back().second + 1 == cp) {
      extra.back().second = cp;
    } else {
      extra.emplace_back(cp, cp);
    }
  }
  out.exact = property + format_ranges(extra);
  out.fast = property;
  out.differ = std::move(extra);
  return out;
}

const ClassBody& class_body(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, ClassBody> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, build_class_body(name)).first;
  return it->second;
}

// A pattern in two PCRE2 forms: exact everywhere, and fast, equal to exact on text without a
// code point in `differ`.
struct Translation {
  std::string exact, fast;
  Ranges differ;
  void add(const std::string& both) {
    exact += both;
    fast += both;
  }
};

// \p{X} / \P{X} (general categories), \w / \W and \d / \D at p[i] (a backslash), written
// with the generated tables so that the classes follow the Unicode version of `tokenizers`
// rather than PCRE2's. Returns the pattern characters used (0: not one of these; a negated
// class inside brackets is left to PCRE2).
size_t expand_class(const std::string& p, size_t i, bool in_class, Translation& out) {
  const char e = p[i + 1];
  std::string name;
  bool negated = false;
  size_t used = 2;
  if (e == 'w' || e == 'W' || e == 'd' || e == 'D') {
    name = (e == 'w' || e == 'W') ? "word" : "digit";
    negated = e == 'W' || e == 'D';
  } else if ((e == 'p' || e == 'P') && i + 2 < p.size() && p[i + 2] == '{') {
    const size_t close = p.find('}', i + 3);
    if (close == std::string::npos) return 0;
    name = p.substr(i + 3, close - i - 3);
    negated = e == 'P';
    if (!name.empty() && name[0] == '^') {
      negated = !negated;
      name = name.substr(1);
    }
    used = close + 1 - i;
  } else {
    return 0;
  }
  const ClassBody& body = class_body(name);
  if (body.exact.empty() || (negated && in_class)) return 0;
  const std::string open = in_class ? "" : negated ? "[^" : "[", close = in_class ? "" : "]";
  out.exact += open + body.exact + close;
  if (!in_class && body.fast != body.exact) {
    out.fast += (negated ? "\\P" : "\\p") + body.fast.substr(2);  // a bare property matches faster
  } else {
    out.fast += open + body.fast + close;
  }
  out.differ.insert(out.differ.end(), body.differ.begin(), body.differ.end());
  return used;
}

Translation translate(const std::string& p) {
  Translation out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char e = p[i + 1];
      if (e == 's') {
        out.add(in_class ? std::string(kWhiteSpaceRanges) : std::string("[") + kWhiteSpaceRanges + "]");
      } else if (e == 'S' && !in_class) {
        out.add(std::string("[^") + kWhiteSpaceRanges + "]");
      } else if (size_t used = expand_class(p, i, in_class, out)) {
        i += used - 1;
        continue;
      } else {
        out.add(std::string{c, e});
      }
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out.add(std::string(1, c));
      // A ']' right after '[' or '[^' is a literal.
      if (i + 1 < p.size() && p[i + 1] == '^') out.add(std::string(1, p[++i]));
      if (i + 1 < p.size() && p[i + 1] == ']') out.add(std::string(1, p[++i]));
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      // POSIX bracket expression [:name:] inside a class.
      size_t end = p.find(":]", i + 2);
      if (end != std::string::npos) {
        out.add(p.substr(i, end + 2 - i));
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out.add(std::string(1, c));
  }
  return out;
}

}  // namespace

std::string translate_onig_pattern(const std::string& p) { return translate(p).exact; }

namespace {

pcre2_code* compile(const std::string& pattern, const std::string& onig_pattern) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &err, &offset, nullptr);
  if (!code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof(buf));
    CADA_FAIL("cannot compile the tokenizer's split pattern '", onig_pattern, "' at offset ", offset, ": ",
              reinterpret_cast<char*>(buf));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return code;
}

// True when text has a code point inside the sorted ranges.
bool has_code_point_in(const std::string& text, const Ranges& ranges) {
  for (size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const int32_t cp = utf8_next(text, i);
    if (cp < 0) continue;
    auto it = std::upper_bound(ranges.begin(), ranges.end(), std::make_pair(static_cast<uint32_t>(cp), UINT32_MAX));
    if (it != ranges.begin() && std::prev(it)->second >= static_cast<uint32_t>(cp)) return true;
  }
  return false;
}

}  // namespace

Regex::Regex(const std::string& onig_pattern) {
  Translation t = translate(onig_pattern);
  code_ = compile(t.exact, onig_pattern);
  if (t.fast != t.exact) {
    fast_code_ = compile(t.fast, onig_pattern);
    std::sort(t.differ.begin(), t.differ.end());
    differ_ = std::move(t.differ);
  }
}

Regex::~Regex() {
  if (code_) pcre2_code_free(code_);
  if (fast_code_) pcre2_code_free(fast_code_);
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(const std::string& text) const {
  std::vector<std::pair<size_t, size_t>> out;
  MatchData& data = thread_match_data();
  CADA_CHECK(data.md != nullptr, "out of memory for regex matching");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const size_t n = text.size();
  pcre2_code* code = fast_code_ && !has_code_point_in(text, differ_) ? fast_code_ : code_;
  size_t pos = 0;
  while (pos <= n) {
    int rc = pcre2_match(code, subject, n, pos, PCRE2_NO_UTF_CHECK, data.md, data.ctx);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(rc, buf, sizeof(buf));
      CADA_FAIL("regex matching failed while pre-tokenizing: ", reinterpret_cast<char*>(buf));
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data.md);
    size_t s = ov[0], e = ov[1];
    if (e > s) {
      out.emplace_back(s, e);
      pos = e;
    } else {
      // Empty match: step over one code point.
      if (s >= n) break;
      pos = s + 1;
      while (pos < n && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
    }
  }
  return out;
}

}  // namespace cada::text::detail
