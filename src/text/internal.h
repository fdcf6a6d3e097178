// Private pieces shared by the tokenizer implementations.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cada/text/added_tokens.h"
#include "cada/text/tokenizer.h"

typedef struct pcre2_real_code_8 pcre2_code_8;

namespace cada::text::detail {

// Token ids read from tokenizer files must lie below this (4M; the largest public
// vocabularies have about 260k): tables indexed by id are dense, so a huge id in a malformed
// file would otherwise allocate gigabytes or overflow id + 1.
constexpr int32_t kMaxTokenId = 1 << 22;

// What tokenizer_config.json, special_tokens_map.json and generation_config.json say
// about special tokens.
struct SpecialConfig {
  std::optional<std::string> bos, eos, pad, unk;  // token strings
  std::optional<bool> add_bos_token, add_eos_token;
  std::vector<AddedToken> added;                  // added_tokens_decoder entries
  std::vector<std::string> additional_special;    // additional_special_tokens
  std::vector<int32_t> generation_eos_ids;        // generation_config.json eos_token_id
};
SpecialConfig read_special_config(const std::string& model_dir);

// Reads and parses a JSON file; throws cada::Error naming the file on failure.
nlohmann::json read_json_file(const std::string& path);

// Sets bos_id/eos_id/pad_id/stop_ids from the config strings through token_to_id.
void resolve_special_ids(Tokenizer& tok, const SpecialConfig& cfg);

// A tokenizer from a tokenizer.json whose model is BPE (tj_tokenizer.cpp); throws naming the
// file and key of the first component it cannot read.
std::unique_ptr<Tokenizer> make_json_tokenizer(const std::string& model_dir, const nlohmann::json& tokenizer_json,
                                               const SpecialConfig& cfg);
std::unique_ptr<Tokenizer> make_sentencepiece_tokenizer(const std::string& model_dir, const SpecialConfig& cfg);

// The model type of a tokenizer.json ("BPE", "Unigram", "WordPiece", ...; "BPE" for an untyped
// model with merges; "" when there is no model).
std::string tokenizer_json_model_type(const nlohmann::json& tokenizer_json);

// A compiled Oniguruma-flavoured pattern run with PCRE2 (UTF + UCP, JIT when available).
// \s and \S are rewritten to Unicode White_Space as Oniguruma defines them; \p{..} general
// categories, \w and \d follow the Unicode version of the `tokenizers` library.
class Regex {
 public:
  explicit Regex(const std::string& onig_pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // Non-overlapping matches [start, end) over valid UTF-8 text, left to right; empty
  // matches are skipped.
  std::vector<std::pair<size_t, size_t>> find_all(const std::string& text) const;

 private:
  pcre2_code_8* code_ = nullptr;       // the pattern with tokenizers' Unicode classes
  pcre2_code_8* fast_code_ = nullptr;  // PCRE2's own classes; used on text without a code
                                       // point in differ_, where it matches the same
  std::vector<std::pair<uint32_t, uint32_t>> differ_;
};

// Oniguruma pattern -> PCRE2 pattern (exposed for tests).
std::string translate_onig_pattern(const std::string& pattern);

// Python's json.dumps(s, ensure_ascii=False) of one string, quotes included (chat templates'
// tojson and the built-in Llama-3 tool turns).
std::string python_json_string(const std::string& s);
// The parsed JSON file at `path`, null when it does not exist; invalid JSON names the file.
nlohmann::json read_json_or_null(const std::string& path);

// A special token value of tokenizer_config.json / special_tokens_map.json: a string, or
// {"content": ...}; null when absent.
inline std::optional<std::string> token_value(const nlohmann::json& cfg, const char* key) {
  if (!cfg.is_object() || !cfg.contains(key)) return std::nullopt;
  const auto& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace cada::text::detail
