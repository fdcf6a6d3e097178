// Fuzz target: loading a Hugging Face tokenizer.json (any BPE pipeline) through
// text::load_tokenizer (include/cada/text/tokenizer.h), then encoding and decoding with it.
//
// Input: the tokenizer.json text, optionally followed by a line "%%" and the text of
// tokenizer_config.json (special tokens, added_tokens_decoder), written into a scratch model
// folder. load_tokenizer may reject the folder (cada::Error, or nlohmann's exceptions for
// values of the wrong JSON type); a tokenizer it returns must encode a few fixed strings and
// the input's own tail, decode what it encoded, and answer id_to_token / token_to_id for every
// id (bounded) without crashing.
//
// Seeds: tests/fuzz/corpus/tokenizer_json (made by tests/fuzz/make_corpus.py).
// Run: scripts/fuzz.sh, or build-fuzz/fuzz_tokenizer_json tests/fuzz/corpus/tokenizer_json
#include <algorithm>
#include <exception>
#include <memory>

#include "cada/io/files.h"
#include "cada/text/tokenizer.h"
#include "fuzz_common.h"

namespace {

const char* const kTexts[] = {
    "Hello world! It's 2024, isn't it?",
    "  leading and  double  spaces\n\nnew\tlines\r\n",
    "h\xC3\xA9llo \xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x99\x82 caf\x65\xCC\x81",  // héllo 世界 🙂 cafe + U+0301
    "<|im_start|>user\nhi<|im_end|><|endoftext|></s><s><|end|>",
    "\xFF\xFE invalid \xC3 utf8",
    "1234567890 3.14 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};

void exercise(const cada::text::Tokenizer& tok, const std::string& tail) {
  for (const char* t : kTexts) {
    for (bool special : {false, true}) {
      std::vector<int32_t> ids = tok.encode(t, special);
      for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < tok.vocab_size());
      (void)tok.decode(ids, false);
      (void)tok.decode(ids, true);
    }
  }
  (void)tok.decode(tok.encode(tail, true), false);
  const int32_t n = std::min<int32_t>(tok.vocab_size(), 2048);
  std::vector<int32_t> all;
  for (int32_t id = -2; id < n + 2; ++id) {
    const std::string s = tok.id_to_token(id);
    if (id >= 0 && id < n && !s.empty()) (void)tok.token_to_id(s);
    (void)tok.is_special(id);
    all.push_back(id);
  }
  (void)tok.decode(all, false);
  (void)tok.decode(all, true);
  for (int32_t id : tok.stop_ids) FUZZ_CHECK(id >= 0 && id < tok.vocab_size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = cada::fuzz::model_dir();
  const std::vector<std::string> parts =
      cada::fuzz::split_parts(std::string(reinterpret_cast<const char*>(data), size));
  cada::fuzz::write_file(dir + "/tokenizer.json", parts[0]);
  if (parts.size() > 1) {
    cada::fuzz::write_file(dir + "/tokenizer_config.json", parts[1]);
  } else {
    cada::fuzz::remove_if_present(dir + "/tokenizer_config.json");
  }
  std::unique_ptr<cada::text::Tokenizer> tok;
  try {
    tok = cada::text::load_tokenizer(dir);
  } catch (const std::exception&) {
    return 0;
  }
  FUZZ_CHECK(tok->kind() == "bpe");
  try {
    exercise(*tok, parts.back().substr(0, 256));
  } catch (const std::exception&) {
    // e.g. an unk_token missing from the vocabulary, found only when encoding.
  }
  return 0;
}
