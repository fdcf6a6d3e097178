// tokenizer.json post-processors for a single sequence with add_special_tokens.
#include "cada/util/error.h"
#include "tj.h"

namespace cada::text::detail::tj {

PostProcessor::PostProcessor(const json& j, const std::string& file, const std::string& where) {
  read(j, file, where);
}

void PostProcessor::read(const json& p, const std::string& file, const std::string& where) {
  if (p.is_null()) return;
  const std::string t = type_of(p);
  if (t == "ByteLevel") return;  // only changes offsets
  if (t == "Sequence") {
    const json& list = p.value("processors", json());
    CADA_CHECK(list.is_array(), file, ": '", where, ".processors' must be a list");
    for (size_t k = 0; k < list.size(); ++k) read(list[k], file, where + ".processors[" + std::to_string(k) + "]");
    return;
  }
  std::vector<Item> items;
  if (t == "TemplateProcessing") {
    const json& single = p.value("single", json::array());
    const json& specials = p.value("special_tokens", json::object());
    CADA_CHECK(single.is_array(), file, ": '", where, ".single' must be a list");
    for (const auto& item : single) {
      if (item.contains("Sequence")) {
        items.push_back({true, {}});
        continue;
      }
      CADA_CHECK(item.contains("SpecialToken") && item["SpecialToken"].is_object(), file, ": '", where,
                 ".single' holds an item that is neither Sequence nor SpecialToken");
      const std::string name = item["SpecialToken"].value("id", std::string());
      CADA_CHECK(specials.is_object() && specials.contains(name) && specials[name].contains("ids") &&
                     specials[name]["ids"].is_array(),
                 file, ": '", where, ".special_tokens' has no ids for '", name, "'");
      Item it;
      for (const auto& id : specials[name]["ids"]) it.ids.push_back(token_id(id, file, "a post-processor token id"));
      items.push_back(std::move(it));
    }
  } else if (t == "RobertaProcessing" || t == "BertProcessing") {
    auto pair_id = [&](const char* key) {
      const json& v = p.value(key, json());
      CADA_CHECK(v.is_array() && v.size() == 2, file, ": '", where, ".", key, "' must be [token, id]");
      return token_id(v[1], file, "a post-processor token id");
    };
    items = {{false, {pair_id("cls")}}, {true, {}}, {false, {pair_id("sep")}}};
  } else {
    CADA_FAIL(file, ": the post-processor type '", t, "' at key '", where,
              ".type' is not supported (cada reads TemplateProcessing, RobertaProcessing, BertProcessing, "
              "ByteLevel, Sequence)");
  }
  for (const auto& it : items) added_ids_.insert(added_ids_.end(), it.ids.begin(), it.ids.end());
  templates_.push_back(std::move(items));
}

std::vector<int32_t> PostProcessor::apply(const std::vector<int32_t>& ids) const {
  std::vector<int32_t> cur = ids;
  for (const auto& items : templates_) {
    std::vector<int32_t> out;
    for (const auto& it : items) {
      if (it.is_seq) {
        out.insert(out.end(), cur.begin(), cur.end());
      } else {
        out.insert(out.end(), it.ids.begin(), it.ids.end());
      }
    }
    cur = std::move(out);
  }
  return cur;
}

}  // namespace cada::text::detail::tj
