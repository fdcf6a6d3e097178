// JSON readers and the String/Regex pattern shared by the tokenizer.json components.
#include "cada/text/unicode.h"
#include "cada/util/error.h"
#include "internal.h"
#include "tj.h"

namespace cada::text::detail::tj {

namespace {

struct ByteTable {
  std::string byte_to_utf8[256];
  std::unordered_map<int32_t, uint8_t> cp_to_byte;
  ByteTable() {
    bool direct[256] = {false};
    for (int b = '!'; b <= '~'; ++b) direct[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) direct[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) direct[b] = true;
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const int32_t cp = direct[b] ? b : 256 + n++;
      utf8_append(byte_to_utf8[b], cp);
      cp_to_byte[cp] = static_cast<uint8_t>(b);
    }
  }
};

const ByteTable& byte_table() {
  static const ByteTable t;
  return t;
}

}  // namespace

const std::string& byte_level_char(uint8_t byte) { return byte_table().byte_to_utf8[byte]; }

int byte_level_byte(int32_t cp) {
  const auto& m = byte_table().cp_to_byte;
  auto it = m.find(cp);
  return it == m.end() ? -1 : it->second;
}

std::string type_of(const json& j) {
  if (j.is_object() && j.contains("type") && j["type"].is_string()) return j["type"].get<std::string>();
  return "";
}

void for_each_component(const json& j, const char* list_key, const std::string& file, const std::string& where,
                        const std::function<void(const json&, const std::string&)>& read_one) {
  if (j.is_null()) return;
  if (type_of(j) != "Sequence") return read_one(j, where);
  const json& list = j.value(list_key, json());
  CADA_CHECK(list.is_array(), file, ": '", where, ".", list_key, "' must be a list");
  for (size_t k = 0; k < list.size(); ++k)
    for_each_component(list[k], list_key, file, where + "." + list_key + "[" + std::to_string(k) + "]", read_one);
}

bool get_bool(const json& j, const char* key, bool dflt) {
  if (j.is_object() && j.contains(key) && j[key].is_boolean()) return j[key].get<bool>();
  return dflt;
}

std::optional<std::string> get_opt_string(const json& j, const char* key) {
  if (j.is_object() && j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
  return std::nullopt;
}

std::string get_string(const json& j, const char* key, const std::string& file, const std::string& where) {
  CADA_CHECK(j.is_object() && j.contains(key) && j[key].is_string(), file, ": '", where, ".", key,
             "' must be a string");
  return j[key].get<std::string>();
}

int32_t token_id(const json& v, const std::string& file, const std::string& what) {
  CADA_CHECK((v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0)) &&
                 v.get<uint64_t>() < static_cast<uint64_t>(kMaxTokenId),
             file, ": ", what, " must be an integer id in [0, ", kMaxTokenId, "), got ",
             v.is_number() ? v.dump() : std::string(v.type_name()));
  return static_cast<int32_t>(v.get<uint64_t>());
}

Pattern read_pattern(const json& j, const std::string& file, const std::string& where) {
  Pattern p;
  if (j.is_object() && j.contains("Regex") && j["Regex"].is_string()) {
    p.regex = std::make_shared<Regex>(j["Regex"].get<std::string>());
  } else if (j.is_object() && j.contains("String") && j["String"].is_string()) {
    p.literal = j["String"].get<std::string>();
  } else {
    CADA_FAIL(file, ": '", where, "' must be {\"String\": ...} or {\"Regex\": ...}");
  }
  return p;
}

std::vector<std::pair<size_t, size_t>> Pattern::find_all(const std::string& text) const {
  if (regex) return regex->find_all(text);
  std::vector<std::pair<size_t, size_t>> out;
  if (literal.empty()) return out;
  for (size_t pos = text.find(literal); pos != std::string::npos; pos = text.find(literal, pos + literal.size()))
    out.emplace_back(pos, pos + literal.size());
  return out;
}

}  // namespace cada::text::detail::tj
