// PCRE2 runner for the Oniguruma-flavoured split patterns of tokenizer.json files.
#include <pcre2.h>

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

// \p{X} / \P{X} (general categories), \w / \W and \d / \D at p[i] (a backslash), written
// with the generated tables so that the classes follow the Unicode version of `tokenizers`
// rather than PCRE2's. Returns the pattern characters used (0: not one of these; a negated
// class inside brackets is left to PCRE2).
size_t expand_class(const std::string& p, size_t i, bool in_class, std::string& out) {
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
  const std::string body = unicode_class_body(name);
  if (body.empty() || (negated && in_class)) return 0;
  out += in_class ? body : std::string(negated ? "[^" : "[") + body + "]";
  return used;
}

}  // namespace

std::string translate_onig_pattern(const std::string& p) {
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char e = p[i + 1];
      if (e == 's') {
        out += in_class ? std::string(kWhiteSpaceRanges) : std::string("[") + kWhiteSpaceRanges + "]";
      } else if (e == 'S' && !in_class) {
        out += std::string("[^") + kWhiteSpaceRanges + "]";
      } else if (size_t used = expand_class(p, i, in_class, out)) {
        i += used - 1;
        continue;
      } else {
        out += c;
        out += e;
      }
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      // POSIX bracket expression [:name:] inside a class.
      size_t end = p.find(":]", i + 2);
      if (end != std::string::npos) {
        out.append(p, i, end + 2 - i);
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

Regex::Regex(const std::string& onig_pattern) {
  const std::string pattern = translate_onig_pattern(onig_pattern);
  int err = 0;
  PCRE2_SIZE offset = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &err,
                        &offset, nullptr);
  if (!code_) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof(buf));
    CADA_FAIL("cannot compile the tokenizer's split pattern '", onig_pattern, "' at offset ", offset, ": ",
              reinterpret_cast<char*>(buf));
  }
  jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() {
  if (code_) pcre2_code_free(code_);
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(const std::string& text) const {
  std::vector<std::pair<size_t, size_t>> out;
  MatchData& data = thread_match_data();
  CADA_CHECK(data.md != nullptr, "out of memory for regex matching");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const size_t n = text.size();
  size_t pos = 0;
  while (pos <= n) {
    int rc = pcre2_match(code_, subject, n, pos, PCRE2_NO_UTF_CHECK, data.md, data.ctx);
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
