// tokenizer.json decoders, as tokenizers' decoders module runs them: each step maps the list of
// token strings to a new list (decode_chain), and the final list is concatenated.
#include "cada/text/unicode.h"
#include "cada/util/error.h"
#include "tj.h"

namespace cada::text::detail::tj {

struct Decoder::Step {
  enum Kind { kByteLevel, kMetaspace, kReplace, kByteFallback, kFuse, kStrip } kind = kByteLevel;
  std::string replacement;   // kMetaspace
  bool drop_first = true;    // kMetaspace: prepend_scheme is not "never"
  Pattern pattern;           // kReplace
  std::string content;       // kReplace: the replacement; kStrip: the character
  size_t start = 0, stop = 0;  // kStrip: how many to strip at each end
};

namespace {

using Step = Decoder::Step;
using Tokens = std::vector<std::string>;

Tokens byte_level(const Tokens& in) {
  std::string bytes;
  for (const std::string& t : in) {
    std::string tmp;
    bool all = true;
    for (size_t i = 0; i < t.size() && all;) {
      const int b = byte_level_byte(utf8_next(t, i));
      if (b < 0) all = false;
      tmp.push_back(static_cast<char>(b));
    }
    bytes += all ? tmp : t;
  }
  return {utf8_lossy(bytes)};
}

Tokens metaspace(const Step& st, const Tokens& in) {
  Tokens out;
  for (size_t k = 0; k < in.size(); ++k) {
    const std::string& t = in[k];
    std::string s;
    for (size_t pos = 0; pos < t.size();) {
      if (t.compare(pos, st.replacement.size(), st.replacement) == 0) {
        if (k != 0 || !st.drop_first) s += ' ';
        pos += st.replacement.size();
      } else {
        s += t[pos++];
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

// "<0xAB>" -> 0xAB, else -1.
int byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  int v = 0;
  for (int k = 3; k < 5; ++k) {
    const char c = t[k];
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

Tokens byte_fallback(const Tokens& in) {
  Tokens out;
  std::string pending;
  auto flush = [&] {
    if (pending.empty()) return;
    if (is_valid_utf8(pending)) {
      out.push_back(pending);
    } else {
      for (size_t k = 0; k < pending.size(); ++k) out.push_back("\xEF\xBF\xBD");
    }
    pending.clear();
  };
  for (const std::string& t : in) {
    const int b = byte_token(t);
    if (b >= 0) {
      pending.push_back(static_cast<char>(b));
      continue;
    }
    flush();
    out.push_back(t);
  }
  flush();
  return out;
}

std::string strip(const Step& st, const std::string& t) {
  std::vector<std::pair<size_t, size_t>> chars;  // [begin, end) of each code point
  for (size_t i = 0; i < t.size();) {
    const size_t b = i;
    utf8_next(t, i);
    chars.emplace_back(b, i);
  }
  auto is_content = [&](size_t k) { return t.compare(chars[k].first, chars[k].second - chars[k].first, st.content) == 0; };
  size_t first = 0, last = chars.size();
  for (size_t k = 0; k < st.start && k < chars.size() && is_content(k); ++k) first = k + 1;
  for (size_t k = 0; k < st.stop && k < chars.size(); ++k) {
    const size_t idx = chars.size() - k - 1;
    if (!is_content(idx)) break;
    last = idx;
  }
  if (first >= last) return "";
  return t.substr(chars[first].first, chars[last - 1].second - chars[first].first);
}

Tokens run_step(const Step& st, Tokens in) {
  switch (st.kind) {
    case Step::kByteLevel:
      return byte_level(in);
    case Step::kMetaspace:
      return metaspace(st, in);
    case Step::kByteFallback:
      return byte_fallback(in);
    case Step::kFuse: {
      std::string all;
      for (const auto& t : in) all += t;
      return {all};
    }
    case Step::kReplace:
      for (auto& t : in) {
        std::string out;
        size_t prev = 0;
        for (const auto& [b, e] : st.pattern.find_all(t)) {
          out.append(t, prev, b - prev);
          out += st.content;
          prev = e;
        }
        t = out + t.substr(prev);
      }
      return in;
    case Step::kStrip:
      for (auto& t : in) t = strip(st, t);
      return in;
  }
  return in;
}

size_t read_count(const json& j, const char* key, const std::string& file, const std::string& where) {
  if (!j.contains(key)) return 0;
  CADA_CHECK(j[key].is_number_unsigned() || (j[key].is_number_integer() && j[key].get<int64_t>() >= 0), file,
             ": '", where, ".", key, "' must be a non-negative integer");
  return j[key].get<size_t>();
}

// One component (not a Sequence) into `steps`.
void read_step(const json& j, const std::string& file, const std::string& where,
               std::vector<std::shared_ptr<const Step>>& steps) {
  const std::string t = type_of(j);
  auto st = std::make_shared<Step>();
  if (t == "ByteLevel") {
    st->kind = Step::kByteLevel;
  } else if (t == "Metaspace") {
    st->kind = Step::kMetaspace;
    st->replacement = j.contains("replacement") ? get_string(j, "replacement", file, where) : "\xE2\x96\x81";
    CADA_CHECK(!st->replacement.empty(), file, ": '", where, ".replacement' is empty");
    if (j.contains("prepend_scheme")) {
      st->drop_first = get_string(j, "prepend_scheme", file, where) != "never";
    } else {
      st->drop_first = get_bool(j, "add_prefix_space", true);
    }
  } else if (t == "Replace") {
    st->kind = Step::kReplace;
    st->content = get_string(j, "content", file, where);
    st->pattern = read_pattern(j.value("pattern", json()), file, where + ".pattern");
  } else if (t == "ByteFallback") {
    st->kind = Step::kByteFallback;
  } else if (t == "Fuse") {
    st->kind = Step::kFuse;
  } else if (t == "Strip") {
    st->kind = Step::kStrip;
    st->content = get_string(j, "content", file, where);
    st->start = read_count(j, "start", file, where);
    st->stop = read_count(j, "stop", file, where);
  } else {
    CADA_FAIL(file, ": the decoder type '", t, "' at key '", where,
              ".type' is not supported (cada reads Sequence, ByteLevel, Metaspace, Replace, ByteFallback, Fuse, "
              "Strip)");
  }
  steps.push_back(std::move(st));
}

}  // namespace

Decoder::Decoder(const json& j, const std::string& file, const std::string& where) {
  present_ = !j.is_null();
  for_each_component(j, "decoders", file, where, [&](const json& part, const std::string& at) {
    read_step(part, file, at, steps_);
  });
}

std::string Decoder::decode(std::vector<std::string> tokens) const {
  std::string out;
  if (!present_) {
    for (size_t k = 0; k < tokens.size(); ++k) out += (k ? " " : "") + tokens[k];
    return out;
  }
  for (const auto& st : steps_) tokens = run_step(*st, std::move(tokens));
  for (const auto& t : tokens) out += t;
  return out;
}

}  // namespace cada::text::detail::tj
