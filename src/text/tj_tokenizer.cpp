// A tokenizer built from a Hugging Face tokenizer.json, following the `tokenizers` pipeline
// (TokenizerImpl::encode_single_sequence): added tokens that are not normalized are split out
// of the raw text; each remaining stretch is normalized and the normalized added tokens are
// split out of it; each remaining stretch is pre-tokenized and run through the model; the
// post-processor adds special tokens. Decoding maps ids to token strings (added tokens first)
// and runs the decoder.
#include <algorithm>
#include <unordered_map>

#include "cada/text/unicode.h"
#include "cada/util/error.h"
#include "internal.h"
#include "tj.h"

namespace cada::text::detail {

using nlohmann::json;

namespace {

class JsonTokenizer : public Tokenizer {
 public:
  JsonTokenizer(const std::string& dir, const json& tj, const SpecialConfig& cfg);

  std::vector<int32_t> encode(const std::string& text, bool add_special_tokens) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(id_to_token_.size()); }
  std::optional<int32_t> token_to_id(const std::string& token) const override {
    if (auto a = added_ids_.find(token); a != added_ids_.end()) return a->second;
    auto it = model_.vocab().find(token);
    if (it == model_.vocab().end()) return std::nullopt;
    return it->second;
  }
  std::string id_to_token(int32_t id) const override {
    if (id < 0 || id >= vocab_size()) return "";
    return id_to_token_[id];
  }
  std::string kind() const override { return "bpe"; }

 private:
  std::vector<AddedToken> read_added_tokens(const json& tj) const;
  void add_added_tokens(const std::vector<AddedToken>& tokens);
  void add_added_token(const AddedToken& t);
  void encode_plain(tj::Piece p, std::vector<int32_t>& ids) const;

  std::string file_;  // "<dir>/tokenizer.json", for messages
  tj::Normalizer normalizer_;
  tj::PreTokenizer pre_tokenizer_;
  tj::BpeModel model_;
  tj::PostProcessor post_;
  tj::Decoder decoder_;
  std::vector<std::string> id_to_token_;  // model tokens, then added tokens
  AddedTokenSplitter raw_splitter_, norm_splitter_;
  std::unordered_map<std::string, int32_t> added_ids_;
  std::unordered_map<int32_t, AddedToken> added_by_id_;
  std::unordered_map<std::string, bool> special_contents_;  // contents of special added tokens
};

const json& member(const json& tj, const char* key) {
  static const json null;
  return tj.contains(key) ? tj[key] : null;
}

JsonTokenizer::JsonTokenizer(const std::string& dir, const json& tj, const SpecialConfig& cfg)
    : file_(dir + "/tokenizer.json"),
      normalizer_(member(tj, "normalizer"), file_),
      pre_tokenizer_(member(tj, "pre_tokenizer"), file_),
      model_(tj.at("model"), file_),
      post_(member(tj, "post_processor"), file_),
      decoder_(member(tj, "decoder"), file_),
      id_to_token_(model_.id_to_token()) {
  // Added tokens get their ids the way tokenizers' AddedVocabulary::add_tokens assigns them
  // (the ids written in the file only matter through that rule, as in tokenizers): known
  // content keeps its id, new content gets the next id after the model / the largest added
  // id. For consistent files this is the id written in the file.
  add_added_tokens(read_added_tokens(tj));
  // transformers also registers the tokens listed in tokenizer_config.json.
  std::vector<AddedToken> batch;
  for (const auto& t : cfg.added)
    if (!added_ids_.count(t.content)) batch.push_back(t);
  add_added_tokens(batch);
  for (int32_t id : post_.added_ids())
    CADA_CHECK(id >= 0 && id < vocab_size(), file_, ": the post-processor adds token id ", id,
               ", which is not in the vocabulary (", vocab_size(), " ids)");
  resolve_special_ids(*this, cfg);
}

std::vector<AddedToken> JsonTokenizer::read_added_tokens(const json& tj) const {
  std::vector<AddedToken> out;
  const json& list = member(tj, "added_tokens");
  if (list.is_null()) return out;
  CADA_CHECK(list.is_array(), file_, ": 'added_tokens' must be a list");
  for (const auto& a : list) {
    CADA_CHECK(a.is_object() && a.contains("content") && a["content"].is_string(), file_,
               ": each entry of 'added_tokens' needs a 'content' string");
    AddedToken t;
    t.content = a["content"].get<std::string>();
    t.special = tj::get_bool(a, "special", false);
    t.single_word = tj::get_bool(a, "single_word", false);
    t.lstrip = tj::get_bool(a, "lstrip", false);
    t.rstrip = tj::get_bool(a, "rstrip", false);
    t.normalized = tj::get_bool(a, "normalized", !t.special);
    out.push_back(t);
  }
  return out;
}

void JsonTokenizer::add_added_tokens(const std::vector<AddedToken>& tokens) {
  const int32_t model_size = model_.size();
  int32_t next_id = model_size;
  if (!added_by_id_.empty()) {
    int32_t max_id = -1;
    for (const auto& [id, t] : added_by_id_) max_id = std::max(max_id, id);
    next_id = (max_id >= model_size || model_size == 0) ? max_id + 1 : model_size;
  }
  for (AddedToken t : tokens) {
    if (t.content.empty()) continue;
    if (auto a = added_ids_.find(t.content); a != added_ids_.end()) {
      t.id = a->second;
    } else if (auto v = model_.vocab().find(t.content); v != model_.vocab().end()) {
      t.id = v->second;
    } else {
      t.id = next_id++;
    }
    CADA_CHECK(t.id < kMaxTokenId, file_, ": too many added tokens");
    add_added_token(t);
  }
}

// A normalized token is matched, and decoded, by its normalized content (tokenizers'
// id_to_token gives "▁[T]" for "[T]" under a Prepend normalizer); its original content maps
// to its id. Skipping special tokens compares the decoded string with the original
// contents, so a special token whose content the normalizer changes is not skipped, as in
// tokenizers.
void JsonTokenizer::add_added_token(const AddedToken& t) {
  AddedToken stored = t;
  if (t.normalized) stored.content = normalizer_.apply(t.content);
  added_ids_[t.content] = t.id;
  added_by_id_[t.id] = stored;
  if (static_cast<size_t>(t.id) >= id_to_token_.size()) id_to_token_.resize(t.id + 1);
  id_to_token_[t.id] = stored.content;
  if (t.special) {
    mark_special(t.id);
    special_contents_[t.content] = true;
  }
  if (t.normalized) {
    norm_splitter_.add(stored);
  } else {
    raw_splitter_.add(t);
  }
}

// One stretch of raw text between non-normalized added tokens.
void JsonTokenizer::encode_plain(tj::Piece p, std::vector<int32_t>& ids) const {
  normalizer_.apply(p);
  size_t offset = 0;
  for (const TextSegment& sub : norm_splitter_.split(p.text)) {
    const bool at_start = p.at_start && offset == 0;
    offset += sub.text.size();
    if (sub.is_token()) {
      ids.push_back(sub.id);
      continue;
    }
    for (const tj::Piece& word : pre_tokenizer_.split({sub.text, at_start})) model_.tokenize(word.text, ids);
  }
}

std::vector<int32_t> JsonTokenizer::encode(const std::string& input, bool add_special_tokens) const {
  const std::string text = is_valid_utf8(input) ? input : utf8_lossy(input);
  std::vector<int32_t> ids;
  size_t offset = 0;
  for (const TextSegment& seg : raw_splitter_.split(text)) {
    const bool at_start = offset == 0;
    offset += seg.text.size();
    if (seg.is_token()) {
      ids.push_back(seg.id);
    } else {
      encode_plain({seg.text, at_start}, ids);
    }
  }
  if (add_special_tokens) ids = post_.apply(ids);
  return ids;
}

std::string JsonTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) continue;
    const std::string* tok = nullptr;
    if (auto a = added_by_id_.find(id); a != added_by_id_.end()) {
      tok = &a->second.content;
    } else if (!id_to_token_[id].empty() || model_.vocab().count("")) {
      tok = &id_to_token_[id];
    } else {
      continue;  // a hole in the id space
    }
    if (skip_special_tokens && special_contents_.count(*tok)) continue;
    tokens.push_back(*tok);
  }
  return decoder_.decode(std::move(tokens));
}

}  // namespace

std::string tokenizer_json_model_type(const json& tj) {
  if (!tj.is_object() || !tj.contains("model")) return "";
  const json& m = tj["model"];
  std::string t = tj::type_of(m);
  if (t.empty() && m.is_object() && m.contains("merges")) t = "BPE";
  return t;
}

std::unique_ptr<Tokenizer> make_json_tokenizer(const std::string& model_dir, const json& tokenizer_json,
                                               const SpecialConfig& cfg) {
  return std::make_unique<JsonTokenizer>(model_dir, tokenizer_json, cfg);
}

}  // namespace cada::text::detail
