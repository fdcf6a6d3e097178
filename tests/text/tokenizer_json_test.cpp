// The tokenizer.json pipeline on tiny hand-written files: sentencepiece-style normalizers and
// Metaspace, the Llama decoder, and the errors for components cada does not read.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

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

const std::string S = "\xE2\x96\x81";  // "▁"

// <unk> <s> </s>, "▁", "h", "i", "▁h", "▁hi", then <0x41> ("A" by byte fallback).
json llama_json() {
  json tj;
  tj["model"] = {{"type", "BPE"},
                 {"vocab", {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}, {S, 3}, {"h", 4}, {"i", 5}, {S + "h", 6},
                            {S + "hi", 7}, {"<0x41>", 8}}},
                 {"merges", json::array({S + " h", S + "h i"})},
                 {"unk_token", "<unk>"},
                 {"fuse_unk", true},
                 {"byte_fallback", true}};
  tj["added_tokens"] = json::array({{{"id", 1}, {"content", "<s>"}, {"special", true}, {"normalized", false}}});
  tj["normalizer"] = {{"type", "Sequence"},
                      {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", S}},
                                                   {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", S}}})}};
  tj["decoder"] = {{"type", "Sequence"},
                   {"decoders", json::array({{{"type", "Replace"}, {"pattern", {{"String", S}}}, {"content", " "}},
                                             {{"type", "ByteFallback"}},
                                             {{"type", "Fuse"}},
                                             {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}};
  tj["post_processor"] = {{"type", "TemplateProcessing"},
                          {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                                  {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
                          {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}};
  return tj;
}

std::unique_ptr<Tokenizer> load(const TempDir& dir, const json& tj) {
  write_text(dir.file("tokenizer.json"), tj.dump());
  return load_tokenizer(dir.path());
}

TEST(TokenizerJson, LegacyLlamaPipeline) {
  TempDir dir;
  auto tok = load(dir, llama_json());
  EXPECT_EQ(tok->encode("hi"), (std::vector<int32_t>{7}));
  // The Prepend normalizer runs on every stretch between added tokens, as in tokenizers.
  EXPECT_EQ(tok->encode("<s>hi"), (std::vector<int32_t>{1, 7}));
  EXPECT_EQ(tok->encode("hi", true), (std::vector<int32_t>{1, 7}));
  EXPECT_EQ(tok->encode("A"), (std::vector<int32_t>{3, 8}));  // "▁" then the byte of "A"
  EXPECT_EQ(tok->encode("x"), (std::vector<int32_t>{3, 0}));  // no byte piece: <unk>
  EXPECT_EQ(tok->decode({1, 7, 8}), "<s> hiA");
  EXPECT_EQ(tok->decode({1, 7}, true), "hi");
}

TEST(TokenizerJson, MetaspacePrependSchemes) {
  TempDir dir;
  json tj = llama_json();
  tj["normalizer"] = nullptr;
  tj["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", S}, {"prepend_scheme", "first"}, {"split", false}};
  auto tok = load(dir, tj);
  EXPECT_EQ(tok->encode("hi"), (std::vector<int32_t>{7}));
  EXPECT_EQ(tok->encode("<s>hi"), (std::vector<int32_t>{1, 4, 5}));  // not at the start: no "▁"
  tj["pre_tokenizer"]["prepend_scheme"] = "always";
  EXPECT_EQ(load(dir, tj)->encode("<s>hi"), (std::vector<int32_t>{1, 7}));
  tj["pre_tokenizer"]["prepend_scheme"] = "never";
  EXPECT_EQ(load(dir, tj)->encode("hi"), (std::vector<int32_t>{4, 5}));
  tj["pre_tokenizer"]["prepend_scheme"] = "sometimes";
  EXPECT_THROW(load(dir, tj), cada::Error);
}

// Loading must fail with one sentence naming the file and the key of the component.
void expect_error(const TempDir& dir, const json& tj, const std::string& key, const std::string& type) {
  try {
    load(dir, tj);
    FAIL() << "expected cada::Error for " << key;
  } catch (const cada::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(dir.file("tokenizer.json")), std::string::npos) << msg;
    EXPECT_NE(msg.find("'" + key + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'" + type + "'"), std::string::npos) << msg;
  }
}

TEST(TokenizerJson, UnknownComponentsNameFileAndKey) {
  TempDir dir;
  json tj = llama_json();
  tj["normalizer"]["normalizers"][1] = {{"type", "Precompiled"}, {"precompiled_charsmap", "AAAA"}};
  expect_error(dir, tj, "normalizer.normalizers[1].type", "Precompiled");
  tj = llama_json();
  tj["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", json::array({{{"type", "UnicodeScripts"}}})}};
  expect_error(dir, tj, "pre_tokenizer.pretokenizers[0].type", "UnicodeScripts");
  tj = llama_json();
  tj["decoder"]["decoders"][2] = {{"type", "CTC"}};
  expect_error(dir, tj, "decoder.decoders[2].type", "CTC");
  tj = llama_json();
  tj["post_processor"] = {{"type", "Mystery"}};
  expect_error(dir, tj, "post_processor.type", "Mystery");
  tj = llama_json();
  tj["model"]["type"] = "Unigram";  // and no tokenizer.model to fall back on
  expect_error(dir, tj, "model.type", "Unigram");
}

TEST(Unicode, CategoriesFollowTokenizersVersion) {
  EXPECT_STREQ(unicode_category('A'), "Lu");
  EXPECT_STREQ(unicode_category(0x1F6DC), "So");  // Unicode 15.0
  EXPECT_STREQ(unicode_category(0x2EBF0), "Lo");  // 15.1, CJK extension I
  EXPECT_STREQ(unicode_category(0x10D4A), "Lo");  // 16.0, Garay
  EXPECT_STREQ(unicode_category(0x10940), "Cn");  // 17.0: not yet assigned for tokenizers
  EXPECT_TRUE(is_unicode_word(0x11F00));
  EXPECT_FALSE(is_unicode_word(0x1F6DC));
  EXPECT_EQ(unicode_class_body("Nope"), "");
  // Split patterns see the same classes (PCRE2's own tables are older).
  EXPECT_EQ(detail::Regex(R"(\p{L}+)").find_all("a\U00010D4Ab\U0002EBF0").size(), 1u);
  EXPECT_EQ(detail::Regex(R"(\w+)").find_all("a\U00011F00b").size(), 1u);
  EXPECT_EQ(detail::Regex(R"(\p{L}+)").find_all("a\U00010940b").size(), 2u);
  // PCRE2's own \p{L} plus what its older tables lack (matching range lists one by one is slow).
  EXPECT_EQ(detail::translate_onig_pattern(R"(\p{L})").substr(0, 6), "[\\p{L}") << detail::translate_onig_pattern(R"(\p{N})").substr(0, 300);
  // Lowercase and NFKC as the tokenizers library: U+0130 lowercases to two code points, and
  // U+1FBF0 (compatibility digit, Unicode 13) is left alone by its older tables.
  EXPECT_EQ(tokenizers_lowercase("\u0130A"), "i\u0307a");
  EXPECT_EQ(tokenizers_normalize("\U0001FBF0\uFB01", "NFKC"), "\U0001FBF0fi");
}

}  // namespace
}  // namespace cada::text
