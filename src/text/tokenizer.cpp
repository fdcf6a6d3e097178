// load_tokenizer: picks the implementation from the files in a model folder and reads
// the special-token configuration shared by both.
#include "cada/text/tokenizer.h"

#include <algorithm>

#include "cada/io/files.h"
#include "cada/util/error.h"
#include "internal.h"

namespace cada::text {

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < special_mask_.size() && special_mask_[id];
}

void Tokenizer::mark_special(int32_t id) {
  if (id < 0) return;
  if (static_cast<size_t>(id) >= special_mask_.size()) special_mask_.resize(id + 1, 0);
  special_mask_[id] = 1;
}

std::vector<int32_t> generation_eos_ids(const std::string& model_dir) {
  std::vector<int32_t> out;
  const std::string path = io::join_path(model_dir, "generation_config.json");
  if (!io::file_exists(path)) return out;
  nlohmann::json gen = detail::read_json_file(path);
  if (gen.is_object() && gen.contains("eos_token_id")) {
    const nlohmann::json& e = gen["eos_token_id"];
    if (e.is_number_integer()) out.push_back(e.get<int32_t>());
    if (e.is_array())
      for (const auto& x : e)
        if (x.is_number_integer()) out.push_back(x.get<int32_t>());
  }
  return out;
}

namespace detail {

using nlohmann::json;

json read_json_file(const std::string& path) {
  const std::string text = io::read_file(path);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    CADA_FAIL(path, " is not valid JSON: ", e.what());
  }
}

namespace {

std::optional<std::string> token_string(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

void read_tokens_from(const json& cfg, SpecialConfig& out, bool fill_only) {
  if (!cfg.is_object()) return;
  auto set = [&](const char* key, std::optional<std::string>& dst) {
    if (fill_only && dst) return;
    if (cfg.contains(key)) {
      auto v = token_string(cfg[key]);
      if (v) dst = v;
    }
  };
  set("bos_token", out.bos);
  set("eos_token", out.eos);
  set("pad_token", out.pad);
  set("unk_token", out.unk);
  for (const char* key : {"additional_special_tokens", "extra_special_tokens"}) {
    if (cfg.contains(key) && cfg[key].is_array())
      for (const auto& e : cfg[key])
        if (auto v = token_string(e)) out.additional_special.push_back(*v);
  }
}

}  // namespace

SpecialConfig read_special_config(const std::string& model_dir) {
  SpecialConfig out;
  const std::string cfg_path = io::join_path(model_dir, "tokenizer_config.json");
  if (io::file_exists(cfg_path)) {
    json cfg = read_json_file(cfg_path);
    read_tokens_from(cfg, out, false);
    if (cfg.is_object()) {
      if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean())
        out.add_bos_token = cfg["add_bos_token"].get<bool>();
      if (cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean())
        out.add_eos_token = cfg["add_eos_token"].get<bool>();
      if (cfg.contains("added_tokens_decoder") && cfg["added_tokens_decoder"].is_object()) {
        for (auto it = cfg["added_tokens_decoder"].begin(); it != cfg["added_tokens_decoder"].end(); ++it) {
          const json& a = it.value();
          AddedToken t;
          try {
            t.id = std::stoi(it.key());
          } catch (const std::exception&) {
            CADA_FAIL(cfg_path, ": added_tokens_decoder key '", it.key(), "' is not an integer id");
          }
          auto content = token_string(a);
          CADA_CHECK(content.has_value(), cfg_path, ": added token ", it.key(), " has no content");
          t.content = *content;
          t.special = a.value("special", false);
          t.single_word = a.value("single_word", false);
          t.lstrip = a.value("lstrip", false);
          t.rstrip = a.value("rstrip", false);
          t.normalized = a.value("normalized", !t.special);
          out.added.push_back(t);
        }
      }
    }
  }
  const std::string map_path = io::join_path(model_dir, "special_tokens_map.json");
  if (io::file_exists(map_path)) read_tokens_from(read_json_file(map_path), out, true);
  out.generation_eos_ids = generation_eos_ids(model_dir);
  return out;
}

void resolve_special_ids(Tokenizer& tok, const SpecialConfig& cfg) {
  auto lookup = [&](const std::optional<std::string>& s) -> std::optional<int32_t> {
    if (!s) return std::nullopt;
    return tok.token_to_id(*s);
  };
  if (auto id = lookup(cfg.bos)) tok.bos_id = id;
  if (auto id = lookup(cfg.eos)) tok.eos_id = id;
  if (auto id = lookup(cfg.pad)) tok.pad_id = id;
  std::vector<int32_t> stops;
  auto add = [&](int32_t id) {
    if (id >= 0 && id < tok.vocab_size() && std::find(stops.begin(), stops.end(), id) == stops.end())
      stops.push_back(id);
  };
  if (tok.eos_id) add(*tok.eos_id);
  for (int32_t id : cfg.generation_eos_ids) add(id);
  for (const char* s : {"<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<|endoftext|>", "<|end_of_text|>",
                        "</s>"}) {
    auto id = tok.token_to_id(s);
    if (id && tok.is_special(*id)) add(*id);
  }
  tok.stop_ids = stops;
}

}  // namespace detail

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir) {
  CADA_CHECK(io::is_directory(model_dir), "cannot load a tokenizer: model folder '", model_dir, "' does not exist");
  const std::string json_path = io::join_path(model_dir, "tokenizer.json");
  const std::string model_path = io::join_path(model_dir, "tokenizer.model");
  const detail::SpecialConfig cfg = detail::read_special_config(model_dir);
  std::string model_type;
  if (io::file_exists(json_path)) {
    nlohmann::json tj = detail::read_json_file(json_path);
    model_type = detail::tokenizer_json_model_type(tj);
    if (model_type == "BPE") return detail::make_json_tokenizer(model_dir, tj, cfg);
  }
  if (io::file_exists(model_path)) return detail::make_sentencepiece_tokenizer(model_dir, cfg);
  if (io::file_exists(json_path)) {
    CADA_FAIL(json_path, ": the model type '", model_type,
              "' at key 'model.type' is not supported (cada reads BPE models) and there is no sentencepiece "
              "tokenizer.model in that folder");
  }
  CADA_FAIL("cannot load a tokenizer from '", model_dir,
            "': expected tokenizer.json (a BPE model: Qwen2, Llama-3, GPT-2, Llama-2, Mistral, Gemma style) or "
            "tokenizer.model (sentencepiece) in that folder");
}

}  // namespace cada::text
