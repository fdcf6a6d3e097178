// Byte-level BPE from a Hugging Face tokenizer.json (Qwen2, Llama-3, GPT-2 style),
// following the `tokenizers` pipeline: added tokens -> normalizer -> pre-tokenizer
// (regex split + byte-level mapping) -> BPE by merge rank -> post-processor.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <mutex>
#include <queue>
#include <unordered_map>

#include "cada/text/unicode.h"
#include "cada/util/error.h"
#include "internal.h"

namespace cada::text::detail {

using nlohmann::json;

namespace {

// GPT-2's pattern, used by the ByteLevel pre-tokenizer when use_regex is true.
const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// GPT-2's bytes_to_unicode table: byte -> code point, and its inverse.
struct ByteTable {
  std::string byte_to_utf8[256];
  std::unordered_map<int32_t, uint8_t> cp_to_byte;
  ByteTable() {
    int32_t map[256];
    bool direct[256] = {false};
    for (int b = '!'; b <= '~'; ++b) direct[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) direct[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) direct[b] = true;
    int n = 0;
    for (int b = 0; b < 256; ++b) map[b] = direct[b] ? b : 256 + n++;
    for (int b = 0; b < 256; ++b) {
      utf8_append(byte_to_utf8[b], map[b]);
      cp_to_byte[map[b]] = static_cast<uint8_t>(b);
    }
  }
};

const ByteTable& byte_table() {
  static const ByteTable t;
  return t;
}

std::string to_byte_level(const std::string& s) {
  const ByteTable& t = byte_table();
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char c : s) out += t.byte_to_utf8[c];
  return out;
}

std::string type_of(const json& j) {
  if (j.is_object() && j.contains("type") && j["type"].is_string()) return j["type"].get<std::string>();
  return "";
}

bool get_bool(const json& j, const char* key, bool dflt) {
  if (j.is_object() && j.contains(key) && j[key].is_boolean()) return j[key].get<bool>();
  return dflt;
}

std::optional<std::string> get_opt_string(const json& j, const char* key) {
  if (j.is_object() && j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
  return std::nullopt;
}

// A token id in tokenizer.json: an integer in [0, kMaxTokenId) (nlohmann's get<int32_t> would
// truncate a larger integer and is undefined for a float out of int range).
int32_t token_id(const json& v, const std::string& dir, const std::string& what) {
  CADA_CHECK((v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0)) &&
                 v.get<uint64_t>() < static_cast<uint64_t>(kMaxTokenId),
             dir, "/tokenizer.json: ", what, " must be an integer id in [0, ", kMaxTokenId, "), got ", v.is_number() ? v.dump() : std::string(v.type_name()));
  return static_cast<int32_t>(v.get<uint64_t>());
}

// (match?, [start,end)) pieces covering text, like tokenizers' Pattern::find_matches.
using Pieces = std::vector<std::pair<bool, std::pair<size_t, size_t>>>;

Pieces cover(const std::string& text, const std::vector<std::pair<size_t, size_t>>& matches) {
  Pieces out;
  size_t prev = 0;
  for (const auto& [s, e] : matches) {
    if (prev != s) out.push_back({false, {prev, s}});
    out.push_back({true, {s, e}});
    prev = e;
  }
  if (prev != text.size()) out.push_back({false, {prev, text.size()}});
  return out;
}

struct PreStep {
  enum Kind { kSplit, kByteLevel } kind = kSplit;
  std::shared_ptr<Regex> regex;  // kSplit with a Regex pattern, or kByteLevel with use_regex
  std::string literal;           // kSplit with a String pattern
  std::string behavior = "Isolated";
  bool invert = false;
  bool add_prefix_space = false;
};

// The merge of the pair at `pos` (left symbol index) with its rank; min-heap order.
struct MergeCand {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
  bool operator<(const MergeCand& o) const {
    if (rank != o.rank) return rank > o.rank;
    return pos > o.pos;
  }
};

class BpeTokenizer : public Tokenizer {
 public:
  BpeTokenizer(const std::string& dir, const json& tj, const SpecialConfig& cfg);

  std::vector<int32_t> encode(const std::string& text, bool add_special_tokens) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(id_to_token_.size()); }
  std::optional<int32_t> token_to_id(const std::string& token) const override {
    auto a = added_ids_.find(token);
    if (a != added_ids_.end()) return a->second;
    auto it = vocab_.find(token);
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
  }
  std::string id_to_token(int32_t id) const override {
    if (id < 0 || id >= vocab_size()) return "";
    return id_to_token_[id];
  }
  std::string kind() const override { return "bpe"; }

 private:
  void load_model(const json& model);
  void load_normalizer(const json& n);
  void load_pre_tokenizer(const json& p);
  void load_post_processor(const json& p);
  void load_decoder(const json& d);
  void add_added_tokens(const std::vector<AddedToken>& tokens);
  void add_added_token(const AddedToken& t);

  std::string normalize(const std::string& s) const {
    std::string out = s;
    for (const auto& f : norm_forms_) out = unicode_normalize(out, f);
    return out;
  }
  std::vector<std::string> pre_tokenize(const std::string& s) const;
  void bpe(const std::string& word, std::vector<int32_t>& out) const;
  std::vector<int32_t> merge_word(const std::string& word) const;

  std::string dir_;
  // model
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (a<<32|b) -> (rank, new id)
  std::optional<std::string> unk_token_, cont_prefix_, eow_suffix_;
  bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  // pipeline
  std::vector<std::string> norm_forms_;
  std::vector<PreStep> pre_steps_;
  std::vector<std::function<std::vector<int32_t>(std::vector<int32_t>)>> post_;
  std::vector<int32_t> post_ids_;  // ids the post-processor adds, checked against the vocabulary
  bool byte_level_decoder_ = false;
  // added tokens
  AddedTokenSplitter raw_splitter_, norm_splitter_;
  std::unordered_map<std::string, int32_t> added_ids_;
  std::unordered_map<int32_t, AddedToken> added_by_id_;
  // word cache
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

BpeTokenizer::BpeTokenizer(const std::string& dir, const json& tj, const SpecialConfig& cfg) : dir_(dir) {
  CADA_CHECK(tj.is_object() && tj.contains("model"), dir, "/tokenizer.json has no 'model'");
  load_model(tj["model"]);
  load_normalizer(tj.value("normalizer", json()));
  load_pre_tokenizer(tj.value("pre_tokenizer", json()));
  load_post_processor(tj.value("post_processor", json()));
  load_decoder(tj.value("decoder", json()));

  // Added tokens get their ids the way tokenizers' AddedVocabulary::add_tokens assigns
  // them (the ids written in the file only matter through that rule, as in tokenizers):
  // known content keeps its id, new content gets the next id after the model / the
  // largest added id. For consistent files this is the id written in the file.
  std::vector<AddedToken> batch;
  if (tj.contains("added_tokens") && tj["added_tokens"].is_array()) {
    for (const auto& a : tj["added_tokens"]) {
      CADA_CHECK(a.is_object() && a.contains("content") && a["content"].is_string(), dir,
                 "/tokenizer.json: each added token needs a 'content' string");
      AddedToken t;
      t.content = a["content"].get<std::string>();
      t.special = get_bool(a, "special", false);
      t.single_word = get_bool(a, "single_word", false);
      t.lstrip = get_bool(a, "lstrip", false);
      t.rstrip = get_bool(a, "rstrip", false);
      t.normalized = get_bool(a, "normalized", !t.special);
      batch.push_back(t);
    }
  }
  add_added_tokens(batch);
  // transformers also registers the tokens listed in tokenizer_config.json.
  batch.clear();
  for (const auto& t : cfg.added)
    if (!added_ids_.count(t.content)) batch.push_back(t);
  add_added_tokens(batch);
  for (int32_t id : post_ids_)
    CADA_CHECK(id >= 0 && id < vocab_size(), dir, "/tokenizer.json: the post-processor adds token id ", id,
               ", which is not in the vocabulary (", vocab_size(), " ids)");
  resolve_special_ids(*this, cfg);
}

void BpeTokenizer::add_added_tokens(const std::vector<AddedToken>& tokens) {
  const int32_t model_size = static_cast<int32_t>(vocab_.size());
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
    } else if (auto v = vocab_.find(t.content); v != vocab_.end()) {
      t.id = v->second;
    } else {
      t.id = next_id++;
    }
    add_added_token(t);
  }
}

void BpeTokenizer::add_added_token(const AddedToken& t) {
  CADA_CHECK(t.id >= 0, dir_, ": added token '", t.content, "' has a negative id");
  if (t.content.empty()) return;
  added_ids_[t.content] = t.id;
  added_by_id_[t.id] = t;
  if (static_cast<size_t>(t.id) >= id_to_token_.size()) id_to_token_.resize(t.id + 1);
  id_to_token_[t.id] = t.content;
  if (t.special) mark_special(t.id);
  if (t.normalized) {
    AddedToken n = t;
    n.content = normalize(t.content);
    norm_splitter_.add(n);
  } else {
    raw_splitter_.add(t);
  }
}

void BpeTokenizer::load_model(const json& m) {
  CADA_CHECK(type_of(m) == "BPE" || (!m.contains("type") && m.contains("merges")), dir_,
             "/tokenizer.json: model type '", type_of(m), "' is not BPE");
  CADA_CHECK(m.contains("vocab") && m["vocab"].is_object(), dir_, "/tokenizer.json: BPE model without a vocab");
  CADA_CHECK(!m.contains("dropout") || m["dropout"].is_null() || m["dropout"].get<double>() == 0.0, dir_,
             "/tokenizer.json: BPE dropout is not supported");
  int32_t max_id = -1;
  vocab_.reserve(m["vocab"].size());
  for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
    const int32_t id = token_id(it.value(), dir_, "the id of token '" + it.key() + "'");
    vocab_[it.key()] = id;
    max_id = std::max(max_id, id);
  }
  id_to_token_.assign(max_id + 1, "");
  std::vector<bool> taken(max_id + 1, false);
  for (const auto& [tok, id] : vocab_) {
    // Two tokens on one id would decode ambiguously (the library keeps whichever it saw last).
    CADA_CHECK(!taken[id], dir_, "/tokenizer.json: tokens '", id_to_token_[id], "' and '", tok, "' share id ", id,
               " in the BPE vocab");
    taken[id] = true;
    id_to_token_[id] = tok;
  }
  unk_token_ = get_opt_string(m, "unk_token");
  cont_prefix_ = get_opt_string(m, "continuing_subword_prefix");
  eow_suffix_ = get_opt_string(m, "end_of_word_suffix");
  byte_fallback_ = get_bool(m, "byte_fallback", false);
  fuse_unk_ = get_bool(m, "fuse_unk", false);
  ignore_merges_ = get_bool(m, "ignore_merges", false);

  if (!m.contains("merges") || m["merges"].is_null()) return;
  const json& merges = m["merges"];
  CADA_CHECK(merges.is_array(), dir_, "/tokenizer.json: model.merges must be a list");
  merges_.reserve(merges.size() * 2);
  int32_t rank = 0;
  for (const auto& e : merges) {
    std::string a, b;
    if (e.is_string()) {
      const std::string s = e.get<std::string>();
      size_t sp = s.find(' ');
      CADA_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos, dir_,
                 "/tokenizer.json: merge '", s, "' is not two tokens separated by one space");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else {
      CADA_CHECK(e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string(), dir_,
                 "/tokenizer.json: each merge must be \"a b\" or [\"a\", \"b\"]");
      a = e[0].get<std::string>();
      b = e[1].get<std::string>();
    }
    auto ia = vocab_.find(a), ib = vocab_.find(b), in = vocab_.find(a + b);
    CADA_CHECK(ia != vocab_.end() && ib != vocab_.end(), dir_, "/tokenizer.json: merge token '",
               ia == vocab_.end() ? a : b, "' is not in the vocabulary");
    CADA_CHECK(in != vocab_.end(), dir_, "/tokenizer.json: merged token '", a + b, "' is not in the vocabulary");
    uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(ia->second)) << 32) | static_cast<uint32_t>(ib->second);
    merges_[key] = {rank, in->second};
    ++rank;
  }
}

void BpeTokenizer::load_normalizer(const json& n) {
  if (n.is_null()) return;
  const std::string t = type_of(n);
  if (t == "NFC" || t == "NFD" || t == "NFKC" || t == "NFKD") {
    norm_forms_.push_back(t);
  } else if (t == "Sequence") {
    for (const auto& c : n.value("normalizers", json::array())) load_normalizer(c);
  } else {
    CADA_FAIL(dir_, "/tokenizer.json: normalizer '", t,
              "' is not supported by cada's byte-level BPE (supported: none, NFC, NFD, NFKC, NFKD)");
  }
}

void BpeTokenizer::load_pre_tokenizer(const json& p) {
  if (p.is_null()) return;
  const std::string t = type_of(p);
  if (t == "Sequence") {
    for (const auto& c : p.value("pretokenizers", json::array())) load_pre_tokenizer(c);
  } else if (t == "Split") {
    PreStep s;
    s.kind = PreStep::kSplit;
    const json& pat = p.value("pattern", json());
    if (pat.is_object() && pat.contains("Regex")) {
      s.regex = std::make_shared<Regex>(pat["Regex"].get<std::string>());
    } else if (pat.is_object() && pat.contains("String")) {
      s.literal = pat["String"].get<std::string>();
      CADA_CHECK(!s.literal.empty(), dir_, "/tokenizer.json: Split with an empty string pattern");
    } else {
      CADA_FAIL(dir_, "/tokenizer.json: Split pre-tokenizer without a Regex or String pattern");
    }
    s.behavior = p.value("behavior", std::string("Isolated"));
    CADA_CHECK(s.behavior == "Isolated" || s.behavior == "Removed" || s.behavior == "MergedWithPrevious" ||
                   s.behavior == "MergedWithNext" || s.behavior == "Contiguous",
               dir_, "/tokenizer.json: unknown Split behavior '", s.behavior, "'");
    s.invert = get_bool(p, "invert", false);
    pre_steps_.push_back(std::move(s));
  } else if (t == "ByteLevel") {
    PreStep s;
    s.kind = PreStep::kByteLevel;
    s.add_prefix_space = get_bool(p, "add_prefix_space", true);
    if (get_bool(p, "use_regex", true)) s.regex = std::make_shared<Regex>(kGpt2Pattern);
    pre_steps_.push_back(std::move(s));
  } else {
    CADA_FAIL(dir_, "/tokenizer.json: pre-tokenizer '", t,
              "' is not supported by cada's byte-level BPE (supported: Split, ByteLevel, Sequence of them)");
  }
}

void BpeTokenizer::load_post_processor(const json& p) {
  if (p.is_null()) return;
  const std::string t = type_of(p);
  auto token_ids = [&](const json& pair) -> int32_t {
    // ["<s>", 0]
    CADA_CHECK(pair.is_array() && pair.size() == 2 && pair[1].is_number_integer(), dir_,
               "/tokenizer.json: malformed special token in the post-processor");
    return token_id(pair[1], dir_, "a post-processor token id");
  };
  if (t == "ByteLevel") {
    return;
  } else if (t == "Sequence") {
    for (const auto& c : p.value("processors", json::array())) load_post_processor(c);
  } else if (t == "TemplateProcessing") {
    const json& single = p.value("single", json::array());
    const json& specials = p.value("special_tokens", json::object());
    std::vector<std::pair<bool, std::vector<int32_t>>> items;  // (is the sequence, ids)
    for (const auto& item : single) {
      if (item.contains("SpecialToken")) {
        const std::string name = item["SpecialToken"].value("id", std::string());
        CADA_CHECK(specials.contains(name) && specials[name].contains("ids"), dir_,
                   "/tokenizer.json: TemplateProcessing uses special token '", name, "' without ids");
        const json& ids = specials[name]["ids"];
        CADA_CHECK(ids.is_array(), dir_, "/tokenizer.json: the ids of special token '", name, "' must be a list");
        std::vector<int32_t> v;
        for (const auto& id : ids) v.push_back(token_id(id, dir_, "a post-processor token id"));
        post_ids_.insert(post_ids_.end(), v.begin(), v.end());
        items.push_back({false, std::move(v)});
      } else if (item.contains("Sequence")) {
        items.push_back({true, {}});
      }
    }
    post_.push_back([items](std::vector<int32_t> ids) {
      std::vector<int32_t> out;
      for (const auto& [is_seq, v] : items) {
        if (is_seq) {
          out.insert(out.end(), ids.begin(), ids.end());
        } else {
          out.insert(out.end(), v.begin(), v.end());
        }
      }
      return out;
    });
  } else if (t == "RobertaProcessing" || t == "BertProcessing") {
    int32_t cls = token_ids(p.value("cls", json())), sep = token_ids(p.value("sep", json()));
    post_ids_.insert(post_ids_.end(), {cls, sep});
    post_.push_back([cls, sep](std::vector<int32_t> ids) {
      ids.insert(ids.begin(), cls);
      ids.push_back(sep);
      return ids;
    });
  } else {
    CADA_FAIL(dir_, "/tokenizer.json: post-processor '", t, "' is not supported");
  }
}

void BpeTokenizer::load_decoder(const json& d) {
  if (d.is_null()) return;
  const std::string t = type_of(d);
  if (t == "ByteLevel") {
    byte_level_decoder_ = true;
  } else if (t == "Sequence") {
    for (const auto& c : d.value("decoders", json::array())) load_decoder(c);
  } else {
    CADA_FAIL(dir_, "/tokenizer.json: decoder '", t, "' is not supported by cada's byte-level BPE");
  }
}

std::vector<std::string> BpeTokenizer::pre_tokenize(const std::string& s) const {
  std::vector<std::string> splits{s};
  bool byte_mapped = false;
  for (const PreStep& step : pre_steps_) {
    std::vector<std::string> next;
    for (std::string& piece : splits) {
      if (step.kind == PreStep::kByteLevel) {
        if (step.add_prefix_space && (piece.empty() || piece[0] != ' ')) piece.insert(piece.begin(), ' ');
        if (!step.regex) {
          next.push_back(std::move(piece));
          continue;
        }
      }
      std::vector<std::pair<size_t, size_t>> matches;
      if (step.regex) {
        matches = step.regex->find_all(piece);
      } else {
        for (size_t pos = piece.find(step.literal); pos != std::string::npos;
             pos = piece.find(step.literal, pos + step.literal.size()))
          matches.emplace_back(pos, pos + step.literal.size());
      }
      Pieces pcs = cover(piece, matches);
      if (step.kind == PreStep::kSplit && step.invert)
        for (auto& p : pcs) p.first = !p.first;
      const std::string behavior = step.kind == PreStep::kByteLevel ? "Isolated" : step.behavior;
      auto sub = [&](const std::pair<size_t, size_t>& r) { return piece.substr(r.first, r.second - r.first); };
      if (behavior == "Isolated") {
        for (const auto& p : pcs) next.push_back(sub(p.second));
      } else if (behavior == "Removed") {
        for (const auto& p : pcs)
          if (!p.first) next.push_back(sub(p.second));
      } else if (behavior == "MergedWithPrevious") {
        bool prev_plain = false;
        for (const auto& p : pcs) {
          if (p.first && prev_plain && !next.empty()) {
            next.back() += sub(p.second);
          } else {
            next.push_back(sub(p.second));
          }
          prev_plain = !p.first;
        }
      } else if (behavior == "MergedWithNext") {
        bool prev_match = false;
        for (const auto& p : pcs) {
          if (!p.first && prev_match && !next.empty()) {
            next.back() += sub(p.second);
          } else {
            next.push_back(sub(p.second));
          }
          prev_match = p.first;
        }
      } else {  // Contiguous
        bool prev_match = false;
        for (const auto& p : pcs) {
          if (p.first && prev_match && !next.empty()) {
            next.back() += sub(p.second);
          } else {
            next.push_back(sub(p.second));
          }
          prev_match = p.first;
        }
      }
    }
    splits.clear();
    for (auto& p : next)
      if (!p.empty()) splits.push_back(std::move(p));
    if (step.kind == PreStep::kByteLevel) byte_mapped = true;
  }
  if (byte_mapped)
    for (auto& p : splits) p = to_byte_level(p);
  return splits;
}

std::vector<int32_t> BpeTokenizer::merge_word(const std::string& w) const {
  struct Sym {
    int32_t id;
    int32_t prev, next;
    bool alive;
  };
  std::vector<Sym> syms;
  syms.reserve(w.size());
  int32_t unk = -1;  // pending unknown token (for fuse_unk), -1 when none
  auto push = [&](int32_t id) {
    int32_t idx = static_cast<int32_t>(syms.size());
    syms.push_back({id, idx - 1, idx + 1, true});
  };
  std::optional<int32_t> unk_id;
  if (unk_token_) {
    auto it = vocab_.find(*unk_token_);
    if (it != vocab_.end()) unk_id = it->second;
  }
  size_t i = 0;
  while (i < w.size()) {
    size_t start = i;
    utf8_next(w, i);
    std::string s = w.substr(start, i - start);
    if (start != 0 && cont_prefix_) s = *cont_prefix_ + s;
    if (i >= w.size() && eow_suffix_) s += *eow_suffix_;
    auto it = vocab_.find(s);
    if (it != vocab_.end()) {
      if (unk >= 0) {
        push(unk);
        unk = -1;
      }
      push(it->second);
      continue;
    }
    if (byte_fallback_) {
      std::vector<int32_t> bytes;
      bool ok = true;
      for (unsigned char b : s) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", b);
        auto bt = vocab_.find(name);
        if (bt == vocab_.end()) {
          ok = false;
          break;
        }
        bytes.push_back(bt->second);
      }
      if (ok) {
        for (int32_t b : bytes) push(b);
        continue;
      }
    }
    if (unk_token_) {
      CADA_CHECK(unk_id.has_value(), dir_, "/tokenizer.json: unk_token '", *unk_token_, "' is not in the vocabulary");
      if (unk >= 0 && fuse_unk_) continue;  // fused into the pending one
      if (unk >= 0) push(unk);
      unk = *unk_id;
    }
  }
  if (unk >= 0) push(unk);
  if (syms.empty()) return {};
  syms.back().next = -1;

  std::priority_queue<MergeCand> queue;
  auto lookup = [&](int32_t a, int32_t b) -> const std::pair<int32_t, int32_t>* {
    uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
    auto it = merges_.find(key);
    return it == merges_.end() ? nullptr : &it->second;
  };
  for (size_t k = 0; k + 1 < syms.size(); ++k) {
    if (auto m = lookup(syms[k].id, syms[k + 1].id))
      queue.push({m->first, static_cast<int32_t>(k), m->second});
  }
  while (!queue.empty()) {
    MergeCand top = queue.top();
    queue.pop();
    Sym& left = syms[top.pos];
    if (!left.alive || left.next < 0) continue;
    Sym& right = syms[left.next];
    auto m = lookup(left.id, right.id);
    if (!m || m->second != top.new_id) continue;  // stale entry
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) syms[right.next].prev = top.pos;
    if (left.prev >= 0) {
      if (auto pm = lookup(syms[left.prev].id, left.id)) queue.push({pm->first, left.prev, pm->second});
    }
    if (left.next >= 0) {
      if (auto nm = lookup(left.id, syms[left.next].id)) queue.push({nm->first, top.pos, nm->second});
    }
  }
  std::vector<int32_t> out;
  for (int32_t k = 0; k >= 0; k = syms[k].next) out.push_back(syms[k].id);
  return out;
}

void BpeTokenizer::bpe(const std::string& word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  constexpr size_t kMaxCachedLen = 256, kCacheCapacity = 10000;
  const bool cacheable = word.size() < kMaxCachedLen;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids = merge_word(word);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() < kCacheCapacity) cache_.emplace(word, std::move(ids));
  }
}

std::vector<int32_t> BpeTokenizer::encode(const std::string& input, bool add_special_tokens) const {
  const std::string text = is_valid_utf8(input) ? input : utf8_lossy(input);
  std::vector<int32_t> ids;
  for (const TextSegment& seg : raw_splitter_.split(text)) {
    if (seg.is_token()) {
      ids.push_back(seg.id);
      continue;
    }
    const std::string normalized = normalize(seg.text);
    for (const TextSegment& sub : norm_splitter_.split(normalized)) {
      if (sub.is_token()) {
        ids.push_back(sub.id);
        continue;
      }
      for (const std::string& word : pre_tokenize(sub.text)) bpe(word, ids);
    }
  }
  if (add_special_tokens)
    for (const auto& p : post_) ids = p(std::move(ids));
  return ids;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::vector<const std::string*> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) continue;
    auto a = added_by_id_.find(id);
    if (a != added_by_id_.end()) {
      if (skip_special_tokens && a->second.special) continue;
      tokens.push_back(&a->second.content);
      continue;
    }
    if (id_to_token_[id].empty() && !vocab_.count("")) continue;  // a hole in the id space
    tokens.push_back(&id_to_token_[id]);
  }
  if (!byte_level_decoder_) {
    std::string out;
    for (size_t k = 0; k < tokens.size(); ++k) {
      if (k) out += ' ';
      out += *tokens[k];
    }
    return out;
  }
  const ByteTable& table = byte_table();
  std::string bytes;
  std::string tmp;
  for (const std::string* t : tokens) {
    tmp.clear();
    bool all_mapped = true;
    for (size_t i = 0; i < t->size();) {
      int32_t cp = utf8_next(*t, i);
      auto it = table.cp_to_byte.find(cp);
      if (it == table.cp_to_byte.end()) {
        all_mapped = false;
        break;
      }
      tmp.push_back(static_cast<char>(it->second));
    }
    bytes += all_mapped ? tmp : *t;
  }
  return utf8_lossy(bytes);
}

bool has_byte_level(const json& j, const char* list_key) {
  const std::string t = type_of(j);
  if (t == "ByteLevel") return true;
  if (t == "Sequence" && j.contains(list_key) && j[list_key].is_array())
    for (const auto& c : j[list_key])
      if (has_byte_level(c, list_key)) return true;
  return false;
}

}  // namespace

bool is_byte_level_bpe(const json& tj, std::string* why) {
  if (!tj.is_object() || !tj.contains("model")) {
    if (why) *why = "tokenizer.json has no model";
    return false;
  }
  const json& m = tj["model"];
  std::string mt = type_of(m);
  if (mt.empty() && m.contains("merges")) mt = "BPE";
  if (mt != "BPE") {
    if (why) *why = "its model is " + (mt.empty() ? std::string("of unknown type") : mt) + ", not BPE";
    return false;
  }
  if (!has_byte_level(tj.value("pre_tokenizer", json()), "pretokenizers")) {
    if (why) *why = "its BPE model has no ByteLevel pre-tokenizer";
    return false;
  }
  return true;
}

std::unique_ptr<Tokenizer> make_bpe_tokenizer(const std::string& model_dir, const json& tokenizer_json,
                                              const SpecialConfig& cfg) {
  return std::make_unique<BpeTokenizer>(model_dir, tokenizer_json, cfg);
}

}  // namespace cada::text::detail
