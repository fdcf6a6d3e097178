// Jinja lexer: template text and tags, with jinja2's whitespace rules as transformers
// configures them (trim_blocks, lstrip_blocks, no trailing newline kept).
#include <cctype>
#include <string>
#include <vector>

#include "jinja_internal.h"

namespace cada::text::jinja {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// jinja2 normalises newlines to "\n" and drops one trailing newline (keep_trailing_newline off).
std::string normalise(const std::string& src) {
  std::string s;
  s.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\r') {
      s += '\n';
      if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
    } else {
      s += src[i];
    }
  }
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

int count_lines(const std::string& s, size_t from, size_t to) {
  int n = 0;
  for (size_t i = from; i < to && i < s.size(); ++i) n += s[i] == '\n';
  return n;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// A quoted string literal starting at s[i]; returns its value (Python escapes) and moves i past it.
std::string lex_string(const std::string& s, size_t& i, int line) {
  const char q = s[i++];
  std::string out;
  while (i < s.size() && s[i] != q) {
    char c = s[i++];
    if (c != '\\' || i >= s.size()) {
      out += c;
      continue;
    }
    char e = s[i++];
    switch (e) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case '0': out += '\0'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'v': out += '\v'; break;
      case '\n': break;
      case 'x': case 'u': case 'U': {
        const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        if (i + n > s.size()) fail(line, "a truncated \\" + std::string(1, e) + " escape in a string literal");
        append_utf8(out, static_cast<uint32_t>(std::stoul(s.substr(i, n), nullptr, 16)));
        i += n;
        break;
      }
      case '\\': case '\'': case '"': out += e; break;
      default: out += '\\'; out += e;
    }
  }
  if (i >= s.size()) fail(line, "a string literal is not closed");
  ++i;
  return out;
}

struct Lexer {
  std::string s;
  std::vector<Token> out;
  int line = 1;

  // Lexes the inside of a tag from i; stops after its end delimiter. Returns whether the end had '-'.
  bool lex_tag(size_t& i, bool is_block) {
    int depth = 0;
    const char* end = is_block ? "%}" : "}}";
    while (true) {
      while (i < s.size() && is_space(s[i])) line += s[i++] == '\n';
      if (i >= s.size()) fail(line, std::string("a tag is not closed (expected '") + end + "')");
      if (depth == 0 && s.compare(i, 3, std::string("-") + end) == 0) { i += 3; return true; }
      if (depth == 0 && s.compare(i, 2, end) == 0) { i += 2; return false; }
      const char c = s[i];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t j = i;
        while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
        out.push_back({Token::Type::kName, s.substr(i, j - i), line});
        i = j;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t j = i;
        bool is_float = false;
        while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
        if (j + 1 < s.size() && s[j] == '.' && std::isdigit(static_cast<unsigned char>(s[j + 1]))) {
          is_float = true;
          for (++j; j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '_');) ++j;
        }
        if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
          size_t k = j + 1;
          if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
          if (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) {
            is_float = true;
            for (j = k; j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]));) ++j;
          }
        }
        std::string num;
        for (size_t k = i; k < j; ++k) if (s[k] != '_') num += s[k];
        out.push_back({is_float ? Token::Type::kFloat : Token::Type::kInt, num, line});
        i = j;
      } else if (c == '\'' || c == '"') {
        const int start = line;
        const size_t from = i;
        std::string v = lex_string(s, i, line);
        line += count_lines(s, from, i);
        out.push_back({Token::Type::kString, v, start});
      } else {
        static const char* const kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
        std::string op(1, c);
        for (const char* t : kTwo) if (s.compare(i, 2, t) == 0) op = t;
        if (std::string("+-*/%~<>=()[]{},.:|!").find(c) == std::string::npos || op == "!")
          fail(line, std::string("unexpected character '") + c + "' in a tag");
        if (op == "(" || op == "[" || op == "{") ++depth;
        if ((op == ")" || op == "]" || op == "}") && depth > 0) --depth;
        out.push_back({Token::Type::kOp, op, line});
        i += op.size();
      }
    }
  }

  void run() {
    size_t i = 0;
    bool strip_next = false;  // the previous tag ended with '-': drop leading whitespace
    bool trim_next = false;   // the previous tag was a block or comment: drop one newline
    while (i <= s.size()) {
      size_t open = s.find('{', i);
      while (open != std::string::npos && open + 1 < s.size() && s[open + 1] != '{' && s[open + 1] != '%' &&
             s[open + 1] != '#')
        open = s.find('{', open + 1);
      if (open != std::string::npos && open + 1 >= s.size()) open = std::string::npos;
      std::string text = s.substr(i, open == std::string::npos ? std::string::npos : open - i);
      const int text_line = line;
      line += count_lines(text, 0, text.size());
      if (strip_next) {
        size_t k = 0;
        while (k < text.size() && is_space(text[k])) ++k;
        text.erase(0, k);
      } else if (trim_next && !text.empty() && text[0] == '\n') {
        text.erase(0, 1);
      }
      if (open == std::string::npos) {
        if (!text.empty()) out.push_back({Token::Type::kText, text, text_line});
        break;
      }
      const char kind = s[open + 1];
      const char mod = open + 2 < s.size() ? s[open + 2] : '\0';
      if (mod == '-') {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else if (kind != '{' && mod != '+') {
        // lstrip_blocks: spaces and tabs between the line start and a block or comment tag
        const size_t nl = text.rfind('\n');
        const size_t from = nl == std::string::npos ? 0 : nl + 1;
        const bool line_start = nl != std::string::npos || i == 0 || s[i - 1] == '\n' || text_at_line_start_;
        if (line_start && text.find_first_not_of(" \t", from) == std::string::npos) text.erase(from);
      }
      if (!text.empty()) out.push_back({Token::Type::kText, text, text_line});
      i = open + 2 + ((mod == '-' || mod == '+') ? 1 : 0);
      text_at_line_start_ = false;
      if (kind == '#') {
        const size_t close = s.find("#}", i);
        if (close == std::string::npos) fail(line, "a comment is not closed (expected '#}')");
        strip_next = close > 0 && s[close - 1] == '-' && close - 1 >= i;
        trim_next = true;
        line += count_lines(s, i, close);
        i = close + 2;
        continue;
      }
      const bool is_block = kind == '%';
      out.push_back({is_block ? Token::Type::kBlockBegin : Token::Type::kVarBegin, "", line});
      const bool dash = lex_tag(i, is_block);
      out.push_back({is_block ? Token::Type::kBlockEnd : Token::Type::kVarEnd, "", line});
      strip_next = dash;
      trim_next = is_block;
      // a text that begins right after a stripped or trimmed tag still counts as a line start
      text_at_line_start_ = i > 0 && s[i - 1] == '\n';
    }
    out.push_back({Token::Type::kEnd, "", line});
  }
  bool text_at_line_start_ = false;
};

}  // namespace

std::vector<Token> tokenize(const std::string& source) {
  Lexer lx;
  lx.s = normalise(source);
  lx.run();
  return lx.out;
}

}  // namespace cada::text::jinja
