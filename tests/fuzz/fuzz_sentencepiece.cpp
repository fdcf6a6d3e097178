// Fuzz target: loading a sentencepiece tokenizer.model through text::load_tokenizer
// (include/cada/text/tokenizer.h; src/text/sp_tokenizer.cpp), then encoding and decoding.
//
// Input: the bytes of tokenizer.model (a serialized sentencepiece ModelProto), written into a
// scratch model folder, optionally followed by a line "%%" and the text of
// tokenizer_config.json; without one, a fixed tokenizer_config.json adds special tokens (some
// inside the model's id range, one past it). The protobuf parsing itself is libsentencepiece's
// (not instrumented); cada's own reading of the piece types and its special-token handling
// are. A rejected model (cada::Error) is normal; a loaded one must encode a few fixed strings
// to ids below vocab_size() and decode them and every id (bounded) without crashing.
//
// Seeds: tests/fuzz/corpus/sentencepiece (made by tests/fuzz/make_corpus.py with the
// sentencepiece trainer, then truncated / edited variants).
// Run: scripts/fuzz.sh, or build-fuzz/fuzz_sentencepiece tests/fuzz/corpus/sentencepiece
#include <algorithm>
#include <exception>
#include <memory>

#include "cada/io/files.h"
#include "cada/text/tokenizer.h"
#include "fuzz_common.h"

namespace {

const char* const kConfig = R"({
  "bos_token": "<s>", "eos_token": "<|end|>", "unk_token": "<unk>", "pad_token": "<pad>",
  "add_bos_token": true, "add_eos_token": true,
  "added_tokens_decoder": {
    "1": {"content": "<s>", "special": true},
    "4": {"content": "<|end|>", "special": true},
    "5": {"content": "<|user|>", "special": false, "lstrip": true},
    "300": {"content": "<|extra|>", "special": true}
  },
  "additional_special_tokens": ["<|user|>"]
})";

const char* const kTexts[] = {
    "Hello world! It's 2024.",
    "  spaces  and\nnew lines\t",
    "h\xC3\xA9llo \xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x99\x82",
    "<s>hi<|end|><|user|> x <|extra|></s><unk><pad>",
    "\xFF\xFE invalid \xC3 utf8",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = cada::fuzz::model_dir();
  // Without a "%%" line the model is the whole input, byte for byte.
  const std::vector<std::string> parts =
      cada::fuzz::split_parts(std::string(reinterpret_cast<const char*>(data), size));
  cada::fuzz::write_file(dir + "/tokenizer.model", parts[0]);
  cada::fuzz::write_file(dir + "/tokenizer_config.json", parts.size() > 1 ? parts[1] : kConfig);
  std::unique_ptr<cada::text::Tokenizer> tok;
  try {
    tok = cada::text::load_tokenizer(dir);
  } catch (const std::exception&) {
    return 0;
  }
  FUZZ_CHECK(tok->kind() == "sentencepiece");
  try {
    for (const char* t : kTexts) {
      for (bool special : {false, true}) {
        std::vector<int32_t> ids = tok->encode(t, special);
        for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < tok->vocab_size());
        (void)tok->decode(ids, false);
        (void)tok->decode(ids, true);
      }
    }
    std::vector<int32_t> all;
    const int32_t n = std::min<int32_t>(tok->vocab_size(), 2048);
    for (int32_t id = -2; id < n + 2; ++id) {
      const std::string s = tok->id_to_token(id);
      if (!s.empty()) (void)tok->token_to_id(s);
      all.push_back(id);
    }
    (void)tok->decode(all, false);
    (void)tok->decode(all, true);
  } catch (const std::exception&) {
  }
  return 0;
}
