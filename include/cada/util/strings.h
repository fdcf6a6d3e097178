// Small string helpers that several layers need: one definition each (a unity build compiles
// several sources as one, so file-local copies of the same helper would collide).
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

namespace cada::util {

// "a, b, c": the items joined by sep.
inline std::string join(const std::vector<std::string>& items, const char* sep = ", ") {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) s += sep;
    s += items[i];
  }
  return s;
}

// The first `most` items joined by ", ", then ", ..." when there were more.
inline std::string join_first(const std::vector<std::string>& items, size_t most) {
  std::vector<std::string> head(items.begin(), items.begin() + std::min(most, items.size()));
  return join(head) + (items.size() > most ? ", ..." : "");
}

inline bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// s without leading and trailing ASCII white space (" \t\r\n\f\v").
inline std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// s with ASCII letters in lower case.
inline std::string to_lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// True when s is empty or holds only spaces, tabs and line breaks.
inline bool is_blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

inline bool contains(const std::vector<std::string>& items, const std::string& x) {
  return std::find(items.begin(), items.end(), x) != items.end();
}

// A name usable as a key and a file name: non-empty, only [A-Za-z0-9_.-].
inline bool valid_name(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

// "path:line", the place of a row in messages.
inline std::string file_line(const std::string& path, size_t line) { return path + ":" + std::to_string(line); }

}  // namespace cada::util
