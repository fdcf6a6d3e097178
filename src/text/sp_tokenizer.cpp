// Sentencepiece tokenizers (tokenizer.model), and training cada's own.
//
// Encoding: the strings of special pieces (unknown, control, user-defined) and of the
// added tokens from tokenizer_config.json are split out first (leftmost-longest) and
// mapped to their ids; the text between them is encoded by the sentencepiece processor
// (byte fallback included). Decoding mirrors that: runs of ordinary ids are decoded by
// the processor, the split-out tokens are rendered as their strings (or dropped when
// special and skip_special_tokens).
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <unordered_map>

#include "cada/io/files.h"
#include "cada/text/chat_template.h"
#include "cada/text/unicode.h"
#include "cada/util/error.h"
#include "internal.h"

namespace cada::text {

namespace detail {

using nlohmann::json;

namespace {

// Sentencepiece piece types (sentencepiece_model.proto).
enum PieceType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

bool read_varint(const std::string& s, size_t& i, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && i < s.size(); shift += 7) {
    uint8_t b = static_cast<uint8_t>(s[i++]);
    v |= static_cast<uint64_t>(b & 0x7F) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

// Skips a field of the given wire type; false when malformed.
bool skip_field(const std::string& s, size_t& i, uint32_t wire) {
  uint64_t v;
  switch (wire) {
    case 0:
      return read_varint(s, i, v);
    case 1:
      i += 8;
      return i <= s.size();
    case 2:
      if (!read_varint(s, i, v) || v > s.size() - i) return false;
      i += v;
      return true;
    case 5:
      i += 4;
      return i <= s.size();
    default:
      return false;
  }
}

// The types of all pieces, in id order, read from the serialized ModelProto
// (field 1: repeated SentencePiece{1: piece, 2: score, 3: type}).
std::vector<int> piece_types(const std::string& proto) {
  std::vector<int> types;
  size_t i = 0;
  while (i < proto.size()) {
    uint64_t key;
    if (!read_varint(proto, i, key)) break;
    const uint32_t field = static_cast<uint32_t>(key >> 3), wire = static_cast<uint32_t>(key & 7);
    if (field == 1 && wire == 2) {
      uint64_t len;
      if (!read_varint(proto, i, len) || len > proto.size() - i) break;
      const std::string msg = proto.substr(i, len);
      i += len;
      int type = kNormal;
      size_t j = 0;
      while (j < msg.size()) {
        uint64_t k2;
        if (!read_varint(msg, j, k2)) break;
        if ((k2 >> 3) == 3 && (k2 & 7) == 0) {
          uint64_t t;
          if (!read_varint(msg, j, t)) break;
          type = static_cast<int>(t);
        } else if (!skip_field(msg, j, static_cast<uint32_t>(k2 & 7))) {
          break;
        }
      }
      types.push_back(type);
    } else if (!skip_field(proto, i, wire)) {
      break;
    }
  }
  return types;
}

class SpTokenizer : public Tokenizer {
 public:
  SpTokenizer(const std::string& dir, const SpecialConfig& cfg);

  std::vector<int32_t> encode(const std::string& text, bool add_special_tokens) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override;
  int32_t vocab_size() const override { return vocab_size_; }
  std::optional<int32_t> token_to_id(const std::string& token) const override {
    auto a = atomic_ids_.find(token);
    if (a != atomic_ids_.end()) return a->second;
    int id = sp_.PieceToId(token);
    if (id < 0 || id >= piece_size_) return std::nullopt;
    if (id == sp_.unk_id() && token != sp_.IdToPiece(id)) return std::nullopt;
    return id;
  }
  std::string id_to_token(int32_t id) const override {
    auto a = atomic_content_.find(id);
    if (a != atomic_content_.end()) return a->second;
    if (id < 0 || id >= piece_size_) return "";
    return sp_.IdToPiece(id);
  }
  std::string kind() const override { return "sentencepiece"; }

 private:
  void add_atomic(const std::string& content, int32_t id, bool special);

  std::string dir_;
  sentencepiece::SentencePieceProcessor sp_;
  int32_t piece_size_ = 0;
  int32_t vocab_size_ = 0;
  bool add_bos_ = true, add_eos_ = false;
  AddedTokenSplitter splitter_;
  std::unordered_map<std::string, int32_t> atomic_ids_;
  std::unordered_map<int32_t, std::string> atomic_content_;
};

SpTokenizer::SpTokenizer(const std::string& dir, const SpecialConfig& cfg) : dir_(dir) {
  const std::string path = io::join_path(dir, "tokenizer.model");
  const std::string proto = io::read_file(path);
  auto status = sp_.LoadFromSerializedProto(proto);
  CADA_CHECK(status.ok(), "cannot load the sentencepiece model ", path, ": ", status.ToString());
  piece_size_ = sp_.GetPieceSize();
  vocab_size_ = piece_size_;
  const std::vector<int> types = piece_types(proto);
  CADA_CHECK(static_cast<int32_t>(types.size()) == piece_size_, path, " could not be parsed (", types.size(),
             " pieces read, the processor has ", piece_size_, ")");

  // Added tokens of the config that are flagged special.
  std::unordered_map<std::string, bool> cfg_special;
  for (const auto& t : cfg.added) cfg_special[t.content] = cfg_special[t.content] || t.special;
  for (const auto& s : {cfg.bos, cfg.eos, cfg.pad, cfg.unk})
    if (s) cfg_special[*s] = true;
  for (const auto& s : cfg.additional_special) cfg_special[s] = true;

  for (int32_t id = 0; id < piece_size_; ++id) {
    const int type = types[id];
    if (type == kUnknown || type == kControl || type == kUserDefined) {
      const std::string& piece = sp_.IdToPiece(id);
      auto it = cfg_special.find(piece);
      const bool special = type != kUserDefined || (it != cfg_special.end() && it->second);
      add_atomic(piece, id, special);
    }
  }
  for (const auto& t : cfg.added) {
    CADA_CHECK(t.id >= 0 && t.id < kMaxTokenId, dir, "/tokenizer_config.json: added token '", t.content,
               "' has id ", t.id, ", outside [0, ", kMaxTokenId, ")");
    if (t.id < piece_size_) {
      // An existing piece: it is split out whatever its type (HF matches added tokens first).
      if (!atomic_ids_.count(t.content) || atomic_ids_[t.content] != t.id) add_atomic(t.content, t.id, t.special);
      else if (t.special) mark_special(t.id);
    } else {
      add_atomic(t.content, t.id, t.special);
      vocab_size_ = std::max(vocab_size_, t.id + 1);
    }
  }
  add_bos_ = cfg.add_bos_token.value_or(true);
  add_eos_ = cfg.add_eos_token.value_or(false);

  // Special ids: the config strings, else the model's own.
  resolve_special_ids(*this, cfg);
  auto model_id = [&](int id) -> std::optional<int32_t> {
    if (id < 0 || id >= piece_size_) return std::nullopt;
    return id;
  };
  if (!cfg.bos && !bos_id) bos_id = model_id(sp_.bos_id());
  if (!cfg.eos && !eos_id) eos_id = model_id(sp_.eos_id());
  if (!cfg.pad && !pad_id) pad_id = model_id(sp_.pad_id());
  if (eos_id && std::find(stop_ids.begin(), stop_ids.end(), *eos_id) == stop_ids.end())
    stop_ids.insert(stop_ids.begin(), *eos_id);
}

void SpTokenizer::add_atomic(const std::string& content, int32_t id, bool special) {
  if (content.empty()) return;
  AddedToken t;
  t.content = content;
  t.id = id;
  t.special = special;
  splitter_.add(t);
  atomic_ids_[content] = id;
  atomic_content_[id] = content;
  if (special) mark_special(id);
}

std::vector<int32_t> SpTokenizer::encode(const std::string& input, bool add_special_tokens) const {
  const std::string text = is_valid_utf8(input) ? input : utf8_lossy(input);
  std::vector<int32_t> ids;
  if (add_special_tokens && add_bos_ && bos_id) ids.push_back(*bos_id);
  std::vector<int> piece_ids;
  for (const TextSegment& seg : splitter_.split(text)) {
    if (seg.is_token()) {
      ids.push_back(seg.id);
      continue;
    }
    piece_ids.clear();
    auto status = sp_.Encode(seg.text, &piece_ids);
    CADA_CHECK(status.ok(), "sentencepiece encoding failed: ", status.ToString());
    ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
  }
  if (add_special_tokens && add_eos_ && eos_id) ids.push_back(*eos_id);
  return ids;
}

std::string SpTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::string out;
  std::vector<int> run;
  auto flush = [&] {
    if (run.empty()) return;
    std::string piece;
    auto status = sp_.Decode(run, &piece);
    CADA_CHECK(status.ok(), "sentencepiece decoding failed: ", status.ToString());
    out += piece;
    run.clear();
  };
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size_) continue;
    auto a = atomic_content_.find(id);
    if (a != atomic_content_.end()) {
      flush();
      if (!(skip_special_tokens && is_special(id))) out += a->second;
      continue;
    }
    if (id >= piece_size_) continue;
    run.push_back(id);
  }
  flush();
  return out;
}

// Feeds corpus lines to the sentencepiece trainer.
class VectorIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorIterator(const std::vector<std::string>& lines) : lines_(lines) { skip_empty(); }
  bool done() const override { return i_ >= lines_.size(); }
  void Next() override {
    ++i_;
    skip_empty();
  }
  const std::string& value() const override { return lines_[i_]; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

 private:
  void skip_empty() {
    while (i_ < lines_.size() && lines_[i_].empty()) ++i_;
  }
  const std::vector<std::string>& lines_;
  size_t i_ = 0;
};

}  // namespace

std::unique_ptr<Tokenizer> make_sentencepiece_tokenizer(const std::string& model_dir, const SpecialConfig& cfg) {
  return std::make_unique<SpTokenizer>(model_dir, cfg);
}

}  // namespace detail

void train_sentencepiece(const std::vector<std::string>& corpus_lines, int vocab_size, const std::string& out_dir,
                         const std::vector<std::string>& user_defined_symbols) {
  using nlohmann::json;
  CADA_CHECK(vocab_size > 0, "train_sentencepiece: vocab_size must be positive");
  bool any_line = false;
  for (const auto& l : corpus_lines) any_line = any_line || !l.empty();
  CADA_CHECK(any_line, "train_sentencepiece: the corpus is empty");
  const std::vector<std::string> reserved = {"<unk>", "<s>", "</s>", "<pad>"};
  std::string symbols;
  for (const auto& s : user_defined_symbols) {
    CADA_CHECK(!s.empty(), "train_sentencepiece: empty user-defined symbol");
    CADA_CHECK(s.find(',') == std::string::npos, "train_sentencepiece: user-defined symbol '", s,
               "' contains a comma, which the sentencepiece trainer cannot take");
    CADA_CHECK(is_valid_utf8(s), "train_sentencepiece: user-defined symbol is not valid UTF-8");
    CADA_CHECK(std::find(reserved.begin(), reserved.end(), s) == reserved.end(), "train_sentencepiece: '", s,
               "' is already one of the reserved pieces <unk>, <s>, </s>, <pad>");
    if (!symbols.empty()) symbols += ",";
    symbols += s;
  }
  std::vector<std::string> lines;
  lines.reserve(corpus_lines.size());
  for (const auto& l : corpus_lines) lines.push_back(is_valid_utf8(l) ? l : utf8_lossy(l));

  std::unordered_map<std::string, std::string> args = {
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(vocab_size)},
      {"byte_fallback", "true"},
      {"character_coverage", "0.9995"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "3"},
      {"unk_piece", "<unk>"},
      {"bos_piece", "<s>"},
      {"eos_piece", "</s>"},
      {"pad_piece", "<pad>"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "false"},
      {"split_digits", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"max_sentence_length", "1048576"},
      {"num_threads", "1"},
      {"minloglevel", "2"},
  };
  if (!symbols.empty()) args["user_defined_symbols"] = symbols;
  detail::VectorIterator it(lines);
  std::string model;
  auto status = sentencepiece::SentencePieceTrainer::Train(args, &it, &model);
  CADA_CHECK(status.ok(), "sentencepiece training failed: ", status.ToString());

  sentencepiece::SentencePieceProcessor sp;
  status = sp.LoadFromSerializedProto(model);
  CADA_CHECK(status.ok(), "the trained sentencepiece model does not load: ", status.ToString());

  const bool end_is_eos = std::find(user_defined_symbols.begin(), user_defined_symbols.end(), "<|end|>") !=
                          user_defined_symbols.end();
  const std::string eos = end_is_eos ? "<|end|>" : "</s>";
  json decoder = json::object();
  auto entry = [](const std::string& content) {
    return json{{"content", content}, {"lstrip", false}, {"normalized", false},
                {"rstrip", false},    {"single_word", false}, {"special", true}};
  };
  for (int id = 0; id < sp.GetPieceSize(); ++id) {
    const std::string& piece = sp.IdToPiece(id);
    bool listed = id < 4 || std::find(user_defined_symbols.begin(), user_defined_symbols.end(), piece) !=
                                user_defined_symbols.end();
    if (listed) decoder[std::to_string(id)] = entry(piece);
  }
  json cfg = {
      {"tokenizer_class", "LlamaTokenizer"},
      {"bos_token", "<s>"},
      {"eos_token", eos},
      {"unk_token", "<unk>"},
      {"pad_token", "<pad>"},
      {"add_bos_token", true},
      {"add_eos_token", false},
      {"add_prefix_space", false},
      {"legacy", false},
      {"clean_up_tokenization_spaces", false},
      {"sp_model_kwargs", json::object()},
      {"model_max_length", 1000000},
      {"added_tokens_decoder", decoder},
      {"additional_special_tokens", user_defined_symbols},
      {"chat_template", cada_chat_template_jinja()},
  };
  json map = {
      {"bos_token", entry("<s>")},
      {"eos_token", entry(eos)},
      {"unk_token", entry("<unk>")},
      {"pad_token", entry("<pad>")},
      {"additional_special_tokens", user_defined_symbols},
  };
  for (auto& [k, v] : map.items())
    if (v.is_object()) v.erase("special");
  io::make_dirs(out_dir);
  io::atomic_write_file(io::join_path(out_dir, "tokenizer.model"), model);
  io::atomic_write_file(io::join_path(out_dir, "tokenizer_config.json"), cfg.dump(2) + "\n");
  io::atomic_write_file(io::join_path(out_dir, "special_tokens_map.json"), map.dump(2) + "\n");
}

}  // namespace cada::text
