// Tokenizers: one interface over tokenizer.json BPE (Qwen2, Llama-3, GPT-2 byte-level BPE and
// sentencepiece-converted Llama-2, Mistral, Gemma files) and sentencepiece (tokenizer.model
// alone: cada's tiny models).
//
// Both reproduce the Hugging Face behaviour that matters for scoring and generation:
// special/added tokens written literally in the text are recognised as single tokens,
// add_special_tokens prepends BOS (or applies the tokenizer.json post-processor), and
// decoding turns byte-level or byte-fallback pieces back into UTF-8, replacing invalid
// sequences with U+FFFD.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cada::text {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Ids for text. Special/added tokens written literally in `text` are recognised as
  // single tokens (like HF). add_special_tokens: prepend BOS (and whatever the
  // tokenizer's post-processor adds) as HF does.
  virtual std::vector<int32_t> encode(const std::string& text, bool add_special_tokens = false) const = 0;
  // Text for ids; special tokens are rendered literally unless skip_special_tokens.
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const = 0;
  // Number of ids, including added tokens (max id + 1).
  virtual int32_t vocab_size() const = 0;
  virtual std::optional<int32_t> token_to_id(const std::string& token) const = 0;
  // The token string for an id (byte-level or "▁" form, as stored); "" when out of range.
  virtual std::string id_to_token(int32_t id) const = 0;
  // "sentencepiece" or "bpe".
  virtual std::string kind() const = 0;

  std::optional<int32_t> bos_id, eos_id, pad_id;  // from the tokenizer files / tokenizer_config.json
  std::vector<int32_t> stop_ids;                  // eos plus e.g. <|eot_id|>, <|im_end|> when present

  // True for special tokens (control pieces, and added tokens marked special).
  bool is_special(int32_t id) const;

 protected:
  void mark_special(int32_t id);
  std::vector<char> special_mask_;  // indexed by id
};

// Loads the tokenizer in a model folder: tokenizer.json with a BPE model, run through its
// own normalizer / pre-tokenizer / decoder as the `tokenizers` library does (Qwen2, Llama-3,
// GPT-2, and the sentencepiece conversions of Llama-2, Mistral, Gemma), else tokenizer.model
// (sentencepiece). Special tokens
// and BOS/EOS/PAD come from tokenizer_config.json, special_tokens_map.json, the
// tokenizer.json added_tokens and post_processor, and generation_config.json.
// Throws cada::Error naming the folder and what was expected when neither is usable.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir);

// The eos_token_id(s) of a model folder's generation_config.json (e.g. Llama-3's <|eot_id|>),
// which end generation as in transformers; none when the file is absent. A loaded tokenizer's
// stop_ids include them; this serves folders without a tokenizer.
std::vector<int32_t> generation_eos_ids(const std::string& model_dir);

// Trains a sentencepiece BPE model with byte fallback on corpus_lines and writes
// out_dir/tokenizer.model, tokenizer_config.json and special_tokens_map.json
// (loadable by transformers.AutoTokenizer, with the `cada` chat template).
// Ids: 0 <unk>, 1 <s>, 2 </s>, 3 <pad>, then user_defined_symbols (atomic pieces) in
// order. If "<|end|>" is among the symbols it is the EOS token (the cada chat
// template's end-of-turn); otherwise "</s>". Deterministic for the same input.
void train_sentencepiece(const std::vector<std::string>& corpus_lines, int vocab_size,
                         const std::string& out_dir,
                         const std::vector<std::string>& user_defined_symbols);

}  // namespace cada::text
