// tokenizer.json normalizers, as tokenizers' normalizers module applies them to each stretch of
// text between added tokens.
#include "cada/text/unicode.h"
#include "cada/util/error.h"
#include "internal.h"
#include "tj.h"

namespace cada::text::detail::tj {

struct Normalizer::Step {
  enum Kind { kForm, kLowercase, kStrip, kPrepend, kReplace } kind = kForm;
  std::string form;     // kForm: NFC, NFD, NFKC, NFKD
  bool left = false, right = false;  // kStrip
  std::string content;  // kPrepend: the prefix; kReplace: the replacement
  Pattern pattern;      // kReplace
};

namespace {

using Step = Normalizer::Step;

void strip(Piece& p, bool left, bool right) {
  const std::string& s = p.text;
  size_t begin = 0, end = s.size();
  if (left) {
    for (size_t i = 0; i < s.size();) {
      if (!is_unicode_whitespace(utf8_next(s, i))) break;
      begin = i;
    }
  }
  if (right) {
    while (end > begin) {
      size_t start = end - 1;
      while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
      size_t k = start;
      if (!is_unicode_whitespace(utf8_next(s, k))) break;
      end = start;
    }
  }
  if (begin > 0) p.at_start = false;
  p.text = s.substr(begin, end - begin);
}

void replace(Piece& p, const Step& st) {
  const auto matches = st.pattern.find_all(p.text);
  if (matches.empty()) return;
  if (matches.front().first == 0 && st.content.empty()) p.at_start = false;
  std::string out;
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    out.append(p.text, prev, b - prev);
    out += st.content;
    prev = e;
  }
  out.append(p.text, prev, std::string::npos);
  p.text = std::move(out);
}

void apply_step(const Step& st, Piece& p) {
  switch (st.kind) {
    case Step::kForm:
      p.text = tokenizers_normalize(p.text, st.form);
      break;
    case Step::kLowercase:
      p.text = tokenizers_lowercase(p.text);
      break;
    case Step::kStrip:
      strip(p, st.left, st.right);
      break;
    case Step::kPrepend:
      if (!p.text.empty()) p.text = st.content + p.text;
      break;
    case Step::kReplace:
      replace(p, st);
      break;
  }
}

// One component (not a Sequence) into `steps`.
void read_step(const json& j, const std::string& file, const std::string& where,
               std::vector<std::shared_ptr<const Step>>& steps) {
  const std::string t = type_of(j);
  auto st = std::make_shared<Step>();
  if (t == "NFC" || t == "NFD" || t == "NFKC" || t == "NFKD") {
    st->form = t;
  } else if (t == "Lowercase") {
    st->kind = Step::kLowercase;
  } else if (t == "Strip") {
    st->kind = Step::kStrip;
    st->left = get_bool(j, "strip_left", false);
    st->right = get_bool(j, "strip_right", false);
  } else if (t == "Prepend") {
    st->kind = Step::kPrepend;
    st->content = get_string(j, "prepend", file, where);
  } else if (t == "Replace") {
    st->kind = Step::kReplace;
    st->content = get_string(j, "content", file, where);
    st->pattern = read_pattern(j.value("pattern", json()), file, where + ".pattern");
  } else {
    CADA_FAIL(file, ": the normalizer type '", t, "' at key '", where,
              ".type' is not supported (cada reads Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Strip, Prepend, "
              "Replace)");
  }
  steps.push_back(std::move(st));
}

}  // namespace

Normalizer::Normalizer(const json& j, const std::string& file, const std::string& where) {
  for_each_component(j, "normalizers", file, where, [&](const json& part, const std::string& at) {
    read_step(part, file, at, steps_);
  });
}

void Normalizer::apply(Piece& p) const {
  for (const auto& st : steps_) apply_step(*st, p);
}

std::string Normalizer::apply(const std::string& s) const {
  Piece p{s, true};
  apply(p);
  return p.text;
}

}  // namespace cada::text::detail::tj
