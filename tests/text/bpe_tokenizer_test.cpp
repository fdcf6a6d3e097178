// Byte-level BPE on a hand-made tokenizer.json.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "../../src/text/internal.h"
#include "cada/text/tokenizer.h"
#include "cada/text/unicode.h"
#include "cada/util/error.h"
#include "text_test_util.h"

namespace cada::text {
namespace {

using nlohmann::json;
using testing::TempDir;
using testing::write_text;

const char* const kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// GPT-2 byte -> unicode mapping, as a UTF-8 string per byte.
std::string byte_char(int b) {
  std::vector<int> bs;
  for (int i = '!'; i <= '~'; ++i) bs.push_back(i);
  for (int i = 0xA1; i <= 0xAC; ++i) bs.push_back(i);
  for (int i = 0xAE; i <= 0xFF; ++i) bs.push_back(i);
  int cp = -1;
  if (std::find(bs.begin(), bs.end(), b) != bs.end()) {
    cp = b;
  } else {
    int n = 0;
    for (int x = 0; x < 256; ++x) {
      if (std::find(bs.begin(), bs.end(), x) != bs.end()) continue;
      if (x == b) cp = 256 + n;
      ++n;
    }
  }
  std::string out;
  utf8_append(out, cp);
  return out;
}

const std::string G = byte_char(' ');  // "Ġ"

std::vector<std::pair<std::string, std::string>> merge_list() {
  return {{"h", "e"}, {"l", "l"},   {"he", "ll"}, {"hell", "o"}, {G, "w"},     {"o", "r"},  {G + "w", "or"},
          {"b", "c"}, {"a", "b"},   {"a", "a"},   {"aa", "aa"},  {G, G},       {G, "b"},    {"'", "S"}};
}

json make_tokenizer_json(bool pair_merges, bool ignore_merges) {
  json vocab = json::object();
  int next = 0;
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = next++;
  json merges = json::array();
  for (const auto& [a, b] : merge_list()) {
    if (!vocab.contains(a + b)) vocab[a + b] = next++;
    if (pair_merges) {
      merges.push_back(json::array({a, b}));
    } else {
      merges.push_back(a + " " + b);
    }
  }
  vocab["xyz"] = next++;
  const int n = next;
  json added = json::array();
  auto add = [&](const std::string& content, int id, bool special) {
    added.push_back({{"id", id},
                     {"content", content},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", special}});
  };
  add("<|im_start|>", n, true);
  add("<|im_end|>", n + 1, true);
  add("<bos>", n + 2, true);
  add("[TOOL]", n + 3, false);
  json tj = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         json::array({{{"type", "Split"},
                       {"pattern", {{"Regex", kQwen2Pattern}}},
                       {"behavior", "Isolated"},
                       {"invert", false}},
                      {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}})}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", json::array({{{"SpecialToken", {{"id", "<bos>"}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"pair", json::array()},
        {"special_tokens", {{"<bos>", {{"id", "<bos>"}, {"ids", {n + 2}}, {"tokens", {"<bos>"}}}}}}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", ignore_merges},
        {"vocab", vocab},
        {"merges", merges}}},
  };
  return tj;
}

struct Fixture {
  TempDir dir;
  std::unique_ptr<Tokenizer> tok;
  explicit Fixture(bool pair_merges = false, bool ignore_merges = false, bool with_config = true) {
    write_text(dir.file("tokenizer.json"), make_tokenizer_json(pair_merges, ignore_merges).dump());
    if (with_config) {
      json cfg = {{"bos_token", "<bos>"}, {"eos_token", "<|im_end|>"}, {"pad_token", nullptr}};
      write_text(dir.file("tokenizer_config.json"), cfg.dump());
    }
    tok = load_tokenizer(dir.path());
  }
  std::vector<std::string> pieces(const std::string& text) const {
    std::vector<std::string> out;
    for (int32_t id : tok->encode(text)) out.push_back(tok->id_to_token(id));
    return out;
  }
};

using Pieces = std::vector<std::string>;

TEST(BpeTokenizer, MergesByRank) {
  Fixture f;
  EXPECT_EQ(f.tok->kind(), "bpe");
  EXPECT_EQ(f.pieces("hello world"), (Pieces{"hello", G + "wor", "l", "d"}));
  // (b,c) has a lower rank than (a,b): abc -> a + bc.
  EXPECT_EQ(f.pieces("abc"), (Pieces{"a", "bc"}));
  EXPECT_EQ(f.pieces("aaaaa"), (Pieces{"aaaa", "a"}));
  EXPECT_EQ(f.pieces(""), Pieces{});
}

TEST(BpeTokenizer, PairMergeFormatIsEquivalent) {
  Fixture strings(false), pairs(true);
  for (const char* s : {"hello world", "abcaab", "aaaa  b"}) EXPECT_EQ(strings.tok->encode(s), pairs.tok->encode(s));
}

TEST(BpeTokenizer, SplitPatternBehavesLikeOniguruma) {
  Fixture f;
  // \s+(?!\S) leaves the last space to the next word.
  EXPECT_EQ(f.pieces("a   b"), (Pieces{"a", G + G, G + "b"}));
  // Case-insensitive contractions split before the letters that follow.
  EXPECT_EQ(f.pieces("IT'SX"), (Pieces{"I", "T", "'S", "X"}));
}

TEST(BpeTokenizer, IgnoreMerges) {
  Fixture plain(false, false), ignoring(false, true);
  EXPECT_EQ(plain.pieces("xyz"), (Pieces{"x", "y", "z"}));
  EXPECT_EQ(ignoring.pieces("xyz"), (Pieces{"xyz"}));
  EXPECT_EQ(ignoring.pieces("hello"), (Pieces{"hello"}));
}

TEST(BpeTokenizer, AddedTokensAndSpecialIds) {
  Fixture f;
  const int32_t start = *f.tok->token_to_id("<|im_start|>"), end = *f.tok->token_to_id("<|im_end|>");
  const int32_t bos = *f.tok->token_to_id("<bos>"), tool = *f.tok->token_to_id("[TOOL]");
  EXPECT_EQ(f.tok->vocab_size(), tool + 1);
  const auto ids = f.tok->encode("<|im_start|>hello<|im_end|>[TOOL]");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[0], start);
  EXPECT_EQ(f.tok->id_to_token(ids[1]), "hello");
  EXPECT_EQ(ids[2], end);
  EXPECT_EQ(ids[3], tool);
  EXPECT_TRUE(f.tok->is_special(start));
  EXPECT_FALSE(f.tok->is_special(tool));
  EXPECT_FALSE(f.tok->is_special(ids[1]));
  EXPECT_EQ(f.tok->bos_id, bos);
  EXPECT_EQ(f.tok->eos_id, end);
  EXPECT_FALSE(f.tok->pad_id.has_value());
  EXPECT_EQ(f.tok->stop_ids, std::vector<int32_t>{end});
  // The post-processor's template prepends <bos>.
  const auto with = f.tok->encode("hello", true);
  ASSERT_EQ(with.size(), 2u);
  EXPECT_EQ(with[0], bos);
  EXPECT_EQ(f.tok->decode(ids), "<|im_start|>hello<|im_end|>[TOOL]");
  EXPECT_EQ(f.tok->decode(ids, /*skip_special_tokens=*/true), "hello[TOOL]");
}

TEST(BpeTokenizer, DecodeRoundTripsAndReplacesInvalidUtf8) {
  Fixture f;
  for (const std::string s : {"héllo wörld 😀\n\t", "  spaces  ", "日本語テキスト", "👩‍👩‍👧 ZWJ", "a\r\n\r\nb"})
    EXPECT_EQ(f.tok->decode(f.tok->encode(s)), s);
  // Half of a 3-byte character.
  const int32_t e2 = *f.tok->token_to_id(byte_char(0xE2));
  const int32_t x82 = *f.tok->token_to_id(byte_char(0x82));
  EXPECT_EQ(f.tok->decode({e2, x82}), "\uFFFD");
  EXPECT_EQ(f.tok->decode({e2, *f.tok->token_to_id("a")}), "\uFFFDa");
  // Unknown ids are skipped.
  EXPECT_EQ(f.tok->decode({-1, 1000000, *f.tok->token_to_id("a")}), "a");
}

TEST(BpeTokenizer, NfcNormalization) {
  Fixture f;
  EXPECT_EQ(f.tok->encode("e\u0301"), f.tok->encode("\u00e9"));
}

TEST(BpeTokenizer, LongWordsAreFast) {
  Fixture f;
  const std::string word(200000, 'a');
  auto t0 = std::chrono::steady_clock::now();
  const auto ids = f.tok->encode(word);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(ids.size(), 50000u);
  EXPECT_LT(secs, 5.0);
}

TEST(BpeTokenizer, ConcurrentEncodingIsConsistent) {
  Fixture f;
  const std::vector<std::string> texts = {"hello world", "abc aaaa", "héllo <|im_start|>x", "IT'SX 123"};
  std::vector<std::vector<int32_t>> want;
  for (const auto& t : texts) want.push_back(f.tok->encode(t));
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      for (int i = 0; i < 500; ++i) {
        const size_t j = (i + k) % texts.size();
        if (f.tok->encode(texts[j] + " w" + std::to_string(i)).size() < want[j].size()) ++bad;
        if (f.tok->encode(texts[j]) != want[j]) ++bad;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(LoadTokenizer, StopIdsFromConfigAndGenerationConfig) {
  TempDir dir;
  write_text(dir.file("tokenizer.json"), make_tokenizer_json(false, false).dump());
  write_text(dir.file("tokenizer_config.json"), R"({"eos_token": {"content": "<|im_start|>"}, "pad_token": "<bos>"})");
  write_text(dir.file("generation_config.json"), R"({"eos_token_id": [3, 7]})");
  auto tok = load_tokenizer(dir.path());
  const int32_t start = *tok->token_to_id("<|im_start|>"), end = *tok->token_to_id("<|im_end|>");
  EXPECT_EQ(tok->eos_id, start);
  EXPECT_EQ(tok->pad_id, *tok->token_to_id("<bos>"));
  EXPECT_FALSE(tok->bos_id.has_value());
  // eos first, then generation_config's ids, then known end-of-turn tokens present.
  EXPECT_EQ(tok->stop_ids, (std::vector<int32_t>{start, 3, 7, end}));
}

TEST(BpeTokenizer, RejectsUnsupportedNormalizer) {
  TempDir dir;
  json tj = make_tokenizer_json(false, false);
  tj["normalizer"] = {{"type", "Precompiled"}};
  write_text(dir.file("tokenizer.json"), tj.dump());
  try {
    load_tokenizer(dir.path());
    FAIL() << "expected cada::Error";
  } catch (const cada::Error& e) {
    EXPECT_NE(std::string(e.what()).find("Precompiled"), std::string::npos) << e.what();
  }
}

TEST(BpeTokenizer, RejectsDuplicateAndHugeIds) {
  TempDir dir;
  json tj = make_tokenizer_json(false, false);
  auto& vocab = tj["model"]["vocab"];
  const std::string first = vocab.begin().key();
  vocab["zz-duplicate"] = vocab.begin().value();
  write_text(dir.file("tokenizer.json"), tj.dump());
  try {
    load_tokenizer(dir.path());
    FAIL() << "expected cada::Error";
  } catch (const cada::Error& e) {
    EXPECT_NE(std::string(e.what()).find("share id"), std::string::npos) << e.what();
  }
  tj = make_tokenizer_json(false, false);
  tj["model"]["vocab"]["huge"] = 1000000000;  // 1e9: refused, not a billion-entry table
  write_text(dir.file("tokenizer.json"), tj.dump());
  EXPECT_THROW(load_tokenizer(dir.path()), cada::Error);
}

TEST(LoadTokenizer, FolderWithoutTokenizerFiles) {
  TempDir dir;
  try {
    load_tokenizer(dir.path());
    FAIL() << "expected cada::Error";
  } catch (const cada::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(dir.path()), std::string::npos) << msg;
    EXPECT_NE(msg.find("tokenizer.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find("tokenizer.model"), std::string::npos) << msg;
  }
  EXPECT_THROW(load_tokenizer(dir.file("does-not-exist")), cada::Error);
  // A WordPiece tokenizer.json is not byte-level BPE and there is no tokenizer.model.
  write_text(dir.file("tokenizer.json"), R"({"model": {"type": "WordPiece", "vocab": {}}})");
  try {
    load_tokenizer(dir.path());
    FAIL() << "expected cada::Error";
  } catch (const cada::Error& e) {
    EXPECT_NE(std::string(e.what()).find("WordPiece"), std::string::npos) << e.what();
  }
}

TEST(Regex, TranslatesWhitespaceClasses) {
  using detail::translate_onig_pattern;
  EXPECT_EQ(translate_onig_pattern("a+"), "a+");
  const std::string s = translate_onig_pattern("\\s");
  EXPECT_NE(s.find("\\x{85}"), std::string::npos);
  EXPECT_EQ(s.front(), '[');
  const std::string inner = translate_onig_pattern("[^\\s\\p{L}]");
  EXPECT_EQ(inner.substr(0, 2), "[^");
  EXPECT_NE(inner.find("\\x{85}"), std::string::npos);
  // \p{L} follows the generated Unicode tables (tokenizers' version, not PCRE2's): U+10D4A
  // (Garay, Unicode 16) is a letter.
  EXPECT_EQ(detail::Regex("[^\\s\\p{L}]+").find_all("a\U00010D4A!"), (std::vector<std::pair<size_t, size_t>>{{5, 6}}));
  EXPECT_EQ(translate_onig_pattern("[\\]s]"), "[\\]s]");
  detail::Regex re(R"(\s+(?!\S)|\s+|\p{L}+)");
  const auto m = re.find_all("ab \u0085 c");
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[1], std::make_pair(size_t{2}, size_t{5}));  // " \x85" (3 bytes) leaving the last space
  EXPECT_THROW(detail::Regex("(unclosed"), cada::Error);
  // Oniguruma's \s is Unicode White_Space: U+180E is not in it (PCRE2's own \s has it).
  detail::Regex ws(R"(\s)");
  EXPECT_TRUE(ws.find_all("a\u180eb").empty());
  EXPECT_EQ(ws.find_all("a\u0085b\u3000").size(), 2u);
  EXPECT_EQ(detail::Regex(R"(\S+)").find_all("a\u180eb").size(), 1u);
}

}  // namespace
}  // namespace cada::text
