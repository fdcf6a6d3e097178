// The pieces of a Hugging Face tokenizer.json pipeline, each run as the `tokenizers` library
// runs it: normalizer -> pre-tokenizer -> model -> post-processor on the way in, decoder on the
// way out. The added-token split that comes before the normalizer lives in tj_tokenizer.cpp.
//
// Every constructor reads one component of the file and throws cada::Error with one sentence
// naming the file and the JSON key (e.g. "normalizer.normalizers[1].type") when the component
// is malformed or of a type cada does not implement.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace cada::text::detail {

class Regex;

namespace tj {

using nlohmann::json;

// A stretch of text on its way through the pipeline. at_start: it begins at offset 0 of the
// original input, which is what Metaspace's prepend_scheme "first" tests (tokenizers checks
// offsets_original().0 == 0; pieces after an added token or after a split do not begin there).
struct Piece {
  std::string text;
  bool at_start = false;
};

// Small JSON readers shared by the components. `file` and `key` only go into error messages.
std::string type_of(const json& j);  // j["type"], "" when absent
bool get_bool(const json& j, const char* key, bool dflt);
std::optional<std::string> get_opt_string(const json& j, const char* key);
// j[key] as a string; throws naming file and key when missing or not a string.
std::string get_string(const json& j, const char* key, const std::string& file, const std::string& where);
// Calls read_one(part, part_where) for each component `j` describes: j itself, or for a
// "Sequence" each entry of its `list_key` list in order, nested Sequences flattened. Nothing for
// null (the component is absent).
void for_each_component(const json& j, const char* list_key, const std::string& file, const std::string& where,
                        const std::function<void(const json&, const std::string&)>& read_one);
// A token id: an integer in [0, kMaxTokenId).
int32_t token_id(const json& v, const std::string& file, const std::string& what);
// GPT-2's bytes_to_unicode: the UTF-8 of the character standing for a byte, and the byte a
// code point stands for (-1 when it stands for none).
const std::string& byte_level_char(uint8_t byte);
int byte_level_byte(int32_t cp);

// A `{"String": s}` or `{"Regex": r}` pattern as Replace and Split write it.
struct Pattern {
  std::string literal;           // String pattern (non-empty)
  std::shared_ptr<Regex> regex;  // Regex pattern
  // Non-overlapping matches [start, end) left to right.
  std::vector<std::pair<size_t, size_t>> find_all(const std::string& text) const;
};
Pattern read_pattern(const json& j, const std::string& file, const std::string& where);

// Normalizers: NFC, NFD, NFKC, NFKD, Lowercase, Strip, Prepend, Replace, Sequence.
class Normalizer {
 public:
  Normalizer() = default;  // no normalizer: the identity
  Normalizer(const json& j, const std::string& file, const std::string& where = "normalizer");
  void apply(Piece& p) const;
  std::string apply(const std::string& s) const;

  struct Step;

 private:
  std::vector<std::shared_ptr<const Step>> steps_;
};

// Pre-tokenizers: Metaspace, ByteLevel, Split, Whitespace, WhitespaceSplit, Digits,
// Punctuation, Sequence. Returns the non-empty pieces in order.
class PreTokenizer {
 public:
  PreTokenizer() = default;  // no pre-tokenizer: the whole piece
  PreTokenizer(const json& j, const std::string& file, const std::string& where = "pre_tokenizer");
  std::vector<Piece> split(Piece p) const;
  bool has_byte_level() const { return byte_level_; }

  struct Step;

 private:
  std::vector<std::shared_ptr<const Step>> steps_;
  bool byte_level_ = false;
};

// Decoders: ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence. decode() is
// tokenizers' Decoder::decode: the chain over the token strings, then joined; with no decoder
// the tokens are joined with spaces.
class Decoder {
 public:
  Decoder() = default;
  Decoder(const json& j, const std::string& file, const std::string& where = "decoder");
  std::string decode(std::vector<std::string> tokens) const;

  struct Step;

 private:
  std::vector<std::shared_ptr<const Step>> steps_;
  bool present_ = false;
};

// The BPE model (tokenizers' models::bpe): vocab, merges by rank, unk_token with fuse_unk,
// byte_fallback (<0xXX> pieces), continuing_subword_prefix, end_of_word_suffix, ignore_merges.
class BpeModel {
 public:
  BpeModel(const json& model, const std::string& file);
  // Appends the ids of one pre-tokenized word. Thread-safe (the word cache is locked).
  void tokenize(const std::string& word, std::vector<int32_t>& out) const;
  int32_t size() const { return static_cast<int32_t>(vocab_.size()); }
  const std::unordered_map<std::string, int32_t>& vocab() const { return vocab_; }
  // Token strings by id ("" for holes in the id space).
  const std::vector<std::string>& id_to_token() const { return id_to_token_; }

 private:
  void read_vocab(const json& m);
  void read_merges(const json& merges);
  std::vector<int32_t> symbols(const std::string& word) const;
  std::vector<int32_t> merge_word(const std::string& word) const;
  const std::pair<int32_t, int32_t>* merge_of(int32_t a, int32_t b) const;

  std::string file_;
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (a<<32|b) -> (rank, new id)
  std::optional<std::string> unk_token_, cont_prefix_, eow_suffix_;
  std::optional<int32_t> unk_id_;
  bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  int32_t byte_ids_[256];  // <0xXX> ids, -1 when absent
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

// Post-processors for one sequence with add_special_tokens: TemplateProcessing's `single`,
// RobertaProcessing / BertProcessing (cls $A sep), ByteLevel (no change to ids), Sequence.
class PostProcessor {
 public:
  PostProcessor() = default;
  PostProcessor(const json& j, const std::string& file, const std::string& where = "post_processor");
  std::vector<int32_t> apply(const std::vector<int32_t>& ids) const;
  // Every id the processor may add (checked against the vocabulary by the caller).
  const std::vector<int32_t>& added_ids() const { return added_ids_; }

 private:
  void read(const json& j, const std::string& file, const std::string& where);
  // One template per processor in a Sequence; an item is the sequence (empty, is_seq) or ids.
  struct Item {
    bool is_seq = false;
    std::vector<int32_t> ids;
  };
  std::vector<std::vector<Item>> templates_;
  std::vector<int32_t> added_ids_;
};

}  // namespace tj
}  // namespace cada::text::detail
