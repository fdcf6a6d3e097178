#include "cada/util/config.h"

#include <fstream>
#include <sstream>

namespace cada::config {

json parse_text(const std::string& text, const std::string& source) {
  try {
    return json::parse(text, nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
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
