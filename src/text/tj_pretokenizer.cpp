// tokenizer.json pre-tokenizers, as tokenizers' pre_tokenizers module splits each normalized
// stretch of text (NormalizedString::split with its SplitDelimiterBehavior).
#include <algorithm>
#include <cctype>

#include "cada/text/unicode.h"
#include "cada/util/error.h"
#include "internal.h"
#include "tj.h"

namespace cada::text::detail::tj {

struct PreTokenizer::Step {
  enum Kind { kSplit, kByteLevel, kMetaspace, kWhitespace, kWhitespaceSplit, kDigits, kPunctuation } kind = kSplit;
  Pattern pattern;                     // kSplit; kByteLevel with use_regex; kWhitespace
  std::string behavior = "Isolated";   // kSplit, kPunctuation
  bool invert = false;                 // kSplit
  bool add_prefix_space = false;       // kByteLevel
  std::string replacement;             // kMetaspace
  std::string prepend = "always";      // kMetaspace: always, first, never
  bool split = true;                   // kMetaspace
  bool individual_digits = false;      // kDigits
};

namespace {

using Step = PreTokenizer::Step;

// GPT-2's pattern, used by the ByteLevel pre-tokenizer when use_regex is true.
const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// (is a match, [start, end)) pieces covering a text, like tokenizers' Pattern::find_matches.
using Matches = std::vector<std::pair<bool, std::pair<size_t, size_t>>>;

Matches cover(size_t n, const std::vector<std::pair<size_t, size_t>>& found) {
  Matches out;
  size_t prev = 0;
  for (const auto& [s, e] : found) {
    if (prev != s) out.push_back({false, {prev, s}});
    out.push_back({true, {s, e}});
    prev = e;
  }
  if (prev != n) out.push_back({false, {prev, n}});
  return out;
}

// Every code point for which pred holds is a one-character match (tokenizers' Fn(char) pattern).
template <class Pred>
std::vector<std::pair<size_t, size_t>> char_matches(const std::string& s, Pred pred) {
  std::vector<std::pair<size_t, size_t>> out;
  for (size_t i = 0; i < s.size();) {
    const size_t b = i;
    if (pred(utf8_next(s, i))) out.emplace_back(b, i);
  }
  return out;
}

// NormalizedString::split: groups the pieces by behavior; empty results are dropped.
void split_by(const Piece& p, const Matches& m, const std::string& behavior, std::vector<Piece>& out) {
  std::vector<std::pair<size_t, size_t>> ranges;
  bool prev_match = false;
  if (behavior == "MergedWithNext") {
    for (size_t k = m.size(); k-- > 0;) {
      const bool is_match = m[k].first;
      if (is_match && !prev_match && !ranges.empty()) {
        ranges.back().first = m[k].second.first;
      } else {
        ranges.push_back(m[k].second);
      }
      prev_match = is_match;
    }
    std::reverse(ranges.begin(), ranges.end());
  } else {
    for (const auto& [is_match, r] : m) {
      bool merge = false;
      if (behavior == "Removed" && is_match) continue;
      if (behavior == "Contiguous") merge = is_match == prev_match;
      if (behavior == "MergedWithPrevious") merge = is_match && !prev_match;
      if (merge && !ranges.empty()) {
        ranges.back().second = r.second;
      } else {
        ranges.push_back(r);
      }
      prev_match = is_match;
    }
  }
  for (const auto& [b, e] : ranges)
    if (e > b) out.push_back({p.text.substr(b, e - b), p.at_start && b == 0});
}

std::string to_byte_level(const std::string& s) {
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char c : s) out += byte_level_char(c);
  return out;
}

void metaspace(const Step& st, Piece p, std::vector<Piece>& out) {
  std::string t;
  for (char c : p.text) {
    if (c == ' ') {
      t += st.replacement;
    } else {
      t += c;
    }
  }
  const bool starts = t.compare(0, st.replacement.size(), st.replacement) == 0;
  if (!starts && (st.prepend == "always" || (st.prepend == "first" && p.at_start))) t = st.replacement + t;
  p.text = std::move(t);
  if (!st.split) {
    if (!p.text.empty()) out.push_back(std::move(p));
    return;
  }
  Pattern rep;
  rep.literal = st.replacement;
  split_by(p, cover(p.text.size(), rep.find_all(p.text)), "MergedWithNext", out);
}

void run_step(const Step& st, Piece p, std::vector<Piece>& out) {
  switch (st.kind) {
    case Step::kMetaspace:
      return metaspace(st, std::move(p), out);
    case Step::kByteLevel: {
      if (st.add_prefix_space && (p.text.empty() || p.text[0] != ' ')) p.text.insert(p.text.begin(), ' ');
      std::vector<Piece> parts;
      if (st.pattern.regex) {
        split_by(p, cover(p.text.size(), st.pattern.find_all(p.text)), "Isolated", parts);
      } else if (!p.text.empty()) {
        parts.push_back(std::move(p));
      }
      for (Piece& part : parts) {
        part.text = to_byte_level(part.text);
        out.push_back(std::move(part));
      }
      return;
    }
    case Step::kSplit: {
      Matches m = cover(p.text.size(), st.pattern.find_all(p.text));
      if (st.invert)
        for (auto& x : m) x.first = !x.first;
      return split_by(p, m, st.behavior, out);
    }
    case Step::kWhitespace: {  // keeps the matches of \w+|[^\w\s]+
      Matches m = cover(p.text.size(), st.pattern.find_all(p.text));
      for (auto& x : m) x.first = !x.first;
      return split_by(p, m, "Removed", out);
    }
    case Step::kWhitespaceSplit:
      return split_by(p, cover(p.text.size(), char_matches(p.text, is_unicode_whitespace)), "Removed", out);
    case Step::kDigits: {
      auto numeric = [](int32_t cp) { return unicode_category(cp)[0] == 'N'; };
      return split_by(p, cover(p.text.size(), char_matches(p.text, numeric)),
                      st.individual_digits ? "Isolated" : "Contiguous", out);
    }
    case Step::kPunctuation: {
      auto punct = [](int32_t cp) {
        return (cp < 0x80 && cp > 0x20 && cp != 0x7F && !std::isalnum(cp)) || unicode_category(cp)[0] == 'P';
      };
      return split_by(p, cover(p.text.size(), char_matches(p.text, punct)), st.behavior, out);
    }
  }
}

const char* const kBehaviors[] = {"Isolated", "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous"};

std::string read_behavior(const json& j, const std::string& file, const std::string& where) {
  const std::string b = j.value("behavior", std::string("Isolated"));
  for (const char* k : kBehaviors)
    if (b == k) return b;
  CADA_FAIL(file, ": '", where, ".behavior' is '", b,
            "', expected Isolated, Removed, MergedWithPrevious, MergedWithNext or Contiguous");
}

std::string read_prepend_scheme(const json& j, const std::string& file, const std::string& where) {
  if (!j.contains("prepend_scheme")) return get_bool(j, "add_prefix_space", true) ? "always" : "never";
  const std::string s = get_string(j, "prepend_scheme", file, where);
  CADA_CHECK(s == "always" || s == "first" || s == "never", file, ": '", where, ".prepend_scheme' is '", s,
             "', expected always, first or never");
  return s;
}

// One component (not a Sequence) into `steps`.
void read_step(const json& j, const std::string& file, const std::string& where,
               std::vector<std::shared_ptr<const Step>>& steps, bool& byte_level) {
  const std::string t = type_of(j);
  auto st = std::make_shared<Step>();
  if (t == "Split") {
    st->pattern = read_pattern(j.value("pattern", json()), file, where + ".pattern");
    CADA_CHECK(st->pattern.regex || !st->pattern.literal.empty(), file, ": '", where, ".pattern' is empty");
    st->behavior = read_behavior(j, file, where);
    st->invert = get_bool(j, "invert", false);
  } else if (t == "ByteLevel") {
    st->kind = Step::kByteLevel;
    st->add_prefix_space = get_bool(j, "add_prefix_space", true);
    if (get_bool(j, "use_regex", true)) st->pattern.regex = std::make_shared<Regex>(kGpt2Pattern);
    byte_level = true;
  } else if (t == "Metaspace") {
    st->kind = Step::kMetaspace;
    st->replacement = j.contains("replacement") ? get_string(j, "replacement", file, where) : "\xE2\x96\x81";
    CADA_CHECK(!st->replacement.empty(), file, ": '", where, ".replacement' is empty");
    st->prepend = read_prepend_scheme(j, file, where);
    st->split = get_bool(j, "split", true);
  } else if (t == "Whitespace") {
    st->kind = Step::kWhitespace;
    st->pattern.regex = std::make_shared<Regex>(R"(\w+|[^\w\s]+)");
  } else if (t == "WhitespaceSplit") {
    st->kind = Step::kWhitespaceSplit;
  } else if (t == "Digits") {
    st->kind = Step::kDigits;
    st->individual_digits = get_bool(j, "individual_digits", false);
  } else if (t == "Punctuation") {
    st->kind = Step::kPunctuation;
    st->behavior = read_behavior(j, file, where);
  } else {
    CADA_FAIL(file, ": the pre-tokenizer type '", t, "' at key '", where,
              ".type' is not supported (cada reads Sequence, Split, ByteLevel, Metaspace, Whitespace, "
              "WhitespaceSplit, Digits, Punctuation)");
  }
  steps.push_back(std::move(st));
}

}  // namespace

PreTokenizer::PreTokenizer(const json& j, const std::string& file, const std::string& where) {
  for_each_component(j, "pretokenizers", file, where, [&](const json& part, const std::string& at) {
    read_step(part, file, at, steps_, byte_level_);
  });
}

std::vector<Piece> PreTokenizer::split(Piece p) const {
  std::vector<Piece> pieces;
  if (!p.text.empty()) pieces.push_back(std::move(p));
  for (const auto& st : steps_) {
    std::vector<Piece> next;
    for (Piece& piece : pieces) run_step(*st, std::move(piece), next);
    pieces = std::move(next);
  }
  return pieces;
}

}  // namespace cada::text::detail::tj
