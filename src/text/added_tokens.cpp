#include "cada/text/added_tokens.h"

#include <algorithm>

#include "cada/text/unicode.h"

namespace cada::text {

namespace {

// Rust regex \w (Unicode): Alphabetic, Mark, Decimal_Number, Connector_Punctuation, Join_Control.
bool is_word_char(int32_t cp) { return cp >= 0 && is_unicode_word(cp); }

// Last code point of s[0, end); *begin receives where it starts.
int32_t last_cp(const std::string& s, size_t end, size_t* begin = nullptr) {
  if (end == 0) return -1;
  size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80 && end - start < 4) --start;
  size_t i = start;
  int32_t cp = utf8_next(s, i);
  if (i != end) {
    if (begin) *begin = end - 1;
    return -1;
  }
  if (begin) *begin = start;
  return cp;
}

}  // namespace

void AddedTokenSplitter::add(const AddedToken& token) {
  if (token.content.empty()) return;
  int node = 0;
  for (unsigned char c : token.content) {
    auto it = trie_[node].next.find(c);
    if (it == trie_[node].next.end()) {
      trie_.push_back(Node{});
      int created = static_cast<int>(trie_.size()) - 1;
      trie_[node].next.emplace(c, created);
      node = created;
    } else {
      node = it->second;
    }
  }
  if (trie_[node].token >= 0) {
    tokens_[trie_[node].token] = token;
  } else {
    tokens_.push_back(token);
    trie_[node].token = static_cast<int>(tokens_.size()) - 1;
  }
}

std::vector<TextSegment> AddedTokenSplitter::split(const std::string& text) const {
  std::vector<TextSegment> out;
  if (text.empty()) return out;
  if (tokens_.empty()) {
    out.push_back({text, -1});
    return out;
  }
  const size_t n = text.size();
  size_t start_offset = 0;  // end of what has been emitted
  size_t pos = 0;           // where the next match search starts
  while (pos < n) {
    // Leftmost-longest: the first position where any token matches, the longest there.
    size_t m_start = n, m_end = 0;
    int m_tok = -1;
    for (size_t i = pos; i < n && m_tok < 0; ++i) {
      int node = 0;
      for (size_t j = i; j < n; ++j) {
        auto it = trie_[node].next.find(static_cast<unsigned char>(text[j]));
        if (it == trie_[node].next.end()) break;
        node = it->second;
        if (trie_[node].token >= 0) {
          m_start = i;
          m_end = j + 1;
          m_tok = trie_[node].token;
        }
      }
    }
    if (m_tok < 0) break;
    pos = m_end;
    if (m_start < start_offset) continue;  // overlaps whitespace an rstrip token swallowed
    const AddedToken& tok = tokens_[m_tok];
    size_t start = m_start, stop = m_end;
    if (tok.single_word) {
      bool start_space = start == 0 || !is_word_char(last_cp(text, start));
      size_t k = stop;
      bool stop_space = stop == n || !is_word_char(utf8_next(text, k));
      if (!start_space || !stop_space) continue;
    }
    if (tok.lstrip) {
      size_t s = start;
      while (s > 0) {
        size_t b = s;
        int32_t cp = last_cp(text, s, &b);
        if (cp < 0 || !is_unicode_whitespace(cp)) break;
        s = b;
      }
      start = std::max(s, start_offset);
    }
    if (tok.rstrip) {
      size_t k = stop;
      while (k < n) {
        size_t before = k;
        int32_t cp = utf8_next(text, k);
        if (cp < 0 || !is_unicode_whitespace(cp)) {
          k = before;
          break;
        }
      }
      stop = k;
    }
    if (start_offset < start) out.push_back({text.substr(start_offset, start - start_offset), -1});
    out.push_back({text.substr(start, stop - start), tok.id});
    start_offset = stop;
  }
  if (start_offset < n) out.push_back({text.substr(start_offset), -1});
  return out;
}

}  // namespace cada::text
