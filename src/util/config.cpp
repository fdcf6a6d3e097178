#include "cada/util/config.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>

namespace cada::config {

namespace {

std::string format_bound(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

// Finds keys repeated within one JSON object (nlohmann keeps the last silently): the parser's
// callback sees every key with its nesting; the path of the first duplicate is kept.
struct DuplicateKeys {
  struct Level {
    bool object;
    std::vector<std::string> keys;
    std::string name;  // this level's path element in its parent
  };
  std::vector<Level> stack;
  std::string pending;  // key just read, names the next value
  std::string duplicate;

  std::string path(const std::string& key) const {
    std::string p;
    for (size_t i = 1; i < stack.size(); ++i) p += stack[i].name + ".";
    return p + key;
  }
  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    using E = json::parse_event_t;
    switch (event) {
      case E::object_start:
      case E::array_start: {
        std::string name = pending;
        if (!stack.empty() && !stack.back().object) name = std::to_string(stack.back().keys.size());
        if (!stack.empty() && !stack.back().object) stack.back().keys.emplace_back();
        stack.push_back({event == E::object_start, {}, name});
        break;
      }
      case E::object_end:
      case E::array_end:
        if (!stack.empty()) stack.pop_back();
        break;
      case E::key: {
        pending = parsed.get<std::string>();
        auto& keys = stack.back().keys;
        if (duplicate.empty() && std::find(keys.begin(), keys.end(), pending) != keys.end()) duplicate = path(pending);
        keys.push_back(pending);
        break;
      }
      case E::value:
        if (!stack.empty() && !stack.back().object) stack.back().keys.emplace_back();
        break;
    }
    return true;
  }
};

}  // namespace

std::string Range::describe() const {
  const bool has_lo = std::isfinite(lo), has_hi = std::isfinite(hi);
  if (has_lo && has_hi)
    return "in " + std::string(lo_open ? "(" : "[") + format_bound(lo) + ", " + format_bound(hi) + (hi_open ? ")" : "]");
  if (has_lo) return (lo_open ? "> " : ">= ") + format_bound(lo);
  if (has_hi) return (hi_open ? "< " : "<= ") + format_bound(hi);
  return "a number";
}

json parse_text(const std::string& text, const std::string& source) {
  try {
    DuplicateKeys dup;
    json j = json::parse(text, std::ref(dup), /*allow_exceptions=*/true, /*ignore_comments=*/true);
    CADA_CHECK(dup.duplicate.empty(), source, ": key '", dup.duplicate,
               "' appears twice in the same object (the earlier value would be ignored)");
    return j;
  } catch (const json::parse_error& e) {
    // Translate the byte offset into a line number for the message.
    size_t line = 1;
    for (size_t i = 0; i < text.size() && i < e.byte; ++i) line += text[i] == '\n';
    std::string what = e.what();
    auto p = what.find("syntax error");
    throw Error(str_cat(source, ":", line, ": not valid JSON (", p == std::string::npos ? what : what.substr(p), ")"));
  }
}

json load_file(const std::string& path) {
  std::ifstream in(path);
  CADA_CHECK(in.good(), path, ": cannot open the config file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_text(ss.str(), path);
}

void apply_overrides(json& j, const std::vector<std::string>& overrides) {
  for (const auto& o : overrides) {
    auto eq = o.find('=');
    CADA_CHECK(eq != std::string::npos && eq > 0, "override '", o, "' must look like key.sub=value");
    const std::string key = o.substr(0, eq), text = o.substr(eq + 1);
    json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) value = text;  // a bare string
    json* node = &j;
    size_t s = 0;
    while (true) {
      size_t dot = key.find('.', s);
      std::string part = key.substr(s, dot == std::string::npos ? std::string::npos : dot - s);
      CADA_CHECK(!part.empty(), "override '", o, "' has an empty key segment");
      // A numeric segment indexes a list: rewards.rewards.2.model=... (the element must exist).
      const bool index = node->is_array() && part.find_first_not_of("0123456789") == std::string::npos;
      if (index) {
        CADA_CHECK(part.size() <= 9, "override '", o, "': index ", part, " is past the end of '",
                   key.substr(0, s ? s - 1 : 0), "' (", node->size(), " elements)");
        const size_t i = std::stoul(part);
        CADA_CHECK(i < node->size(), "override '", o, "': index ", i, " is past the end of '", key.substr(0, s ? s - 1 : 0),
                   "' (", node->size(), " elements)");
        if (dot == std::string::npos) {
          (*node)[i] = value;
          break;
        }
        node = &(*node)[i];
        CADA_CHECK(node->is_object() || node->is_array(), "override '", o, "': '", key.substr(0, dot),
                   "' is not an object");
        s = dot + 1;
        continue;
      }
      CADA_CHECK(node->is_object(), "override '", o, "': '", key.substr(0, s ? s - 1 : 0), "' is not an object");
      if (dot == std::string::npos) {
        (*node)[part] = value;
        break;
      }
      if (!node->contains(part)) (*node)[part] = json::object();
      node = &(*node)[part];
      CADA_CHECK(node->is_object() || node->is_array(), "override '", o, "': '", key.substr(0, dot),
                 "' is not an object");
      s = dot + 1;
    }
  }
}

}  // namespace cada::config
