// Response bodies and streaming text: pieces never taken back, stop strings and incomplete
// characters held back, log-probs in both of OpenAI's shapes.
#include <gtest/gtest.h>

#include "cada/serve/responses.h"

using namespace cada;
using nlohmann::json;

namespace {

// Each id decodes to a fixed byte string, so tests can cut characters and stop strings anywhere.
class ByteTokenizer : public text::Tokenizer {
 public:
  explicit ByteTokenizer(std::vector<std::string> pieces) : pieces_(std::move(pieces)) {}
  std::vector<int32_t> encode(const std::string&, bool) const override { return {}; }
  std::string decode(const std::vector<int32_t>& ids, bool) const override {
    std::string s;
    for (int32_t id : ids) s += pieces_.at(id);
    return s;
  }
  int32_t vocab_size() const override { return static_cast<int32_t>(pieces_.size()); }
  std::optional<int32_t> token_to_id(const std::string&) const override { return std::nullopt; }
  std::string id_to_token(int32_t id) const override { return pieces_.at(id); }
  std::string kind() const override { return "bytes"; }

 private:
  std::vector<std::string> pieces_;
};

// Feeds ids one by one; returns every piece sent, the finish piece last.
std::vector<std::string> stream(const text::Tokenizer& tok, const std::vector<int32_t>& ids,
                                const std::vector<std::string>& stops, const std::string& final_text) {
  serve::IncrementalText t(tok, stops);
  std::vector<std::string> out;
  std::vector<int32_t> so_far;
  for (int32_t id : ids) {
    so_far.push_back(id);
    out.push_back(t.update(so_far));
  }
  out.push_back(t.finish(final_text));
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x;
  return s;
}

}  // namespace

TEST(IncrementalText, HoldsBackIncompleteCharacters) {
  // "é" = C3 A9 and "日" = E6 97 A5, each cut across tokens.
  ByteTokenizer tok({"caf", "\xC3", "\xA9", " ", "\xE6", "\x97", "\xA5", "!"});
  const std::vector<int32_t> ids{0, 1, 2, 3, 4, 5, 6, 7};
  auto pieces = stream(tok, ids, {}, tok.decode(ids, true));
  EXPECT_EQ(join(pieces), "caf\xC3\xA9 \xE6\x97\xA5!");
  for (const auto& p : pieces) EXPECT_TRUE(json(p).dump(-1, ' ', false, json::error_handler_t::strict).size() > 0)
      << "every piece is valid UTF-8";
  EXPECT_EQ(pieces[1], "") << "a lone lead byte waits for the rest of its character";
  EXPECT_EQ(pieces[2], "\xC3\xA9");
  EXPECT_EQ(pieces[6], "\xE6\x97\xA5");
}

TEST(IncrementalText, NeverSendsAStopStringOrItsStart) {
  ByteTokenizer tok({"Mix ", "flo", "ur", " and ", "fl", "at", " bread"});
  const std::vector<int32_t> ids{0, 4, 5, 3, 1, 2, 6};  // "Mix flat and flour bread"
  const std::string full = tok.decode(ids, true);
  const std::string final_text = full.substr(0, full.find("flour"));  // the engine cut it
  auto pieces = stream(tok, ids, {"flour"}, final_text);
  EXPECT_EQ(join(pieces), "Mix flat and ");
  EXPECT_EQ(pieces[1], "") << "\"fl\" could start the stop string";
  EXPECT_EQ(pieces[2], "flat") << "released once it cannot";
  for (const auto& p : pieces) EXPECT_EQ(p.find("flo"), std::string::npos);
  // Without stop strings everything goes out as it comes.
  EXPECT_EQ(stream(tok, ids, {}, full)[1], "fl");
}

TEST(IncrementalText, FinishSendsWhatIsLeft) {
  ByteTokenizer tok({"a", "b", "\xE2\x82"});
  // The final text ends with an incomplete character that streaming held back: finish sends it.
  auto pieces = stream(tok, {0, 1, 2}, {}, "ab\xE2\x82");
  EXPECT_EQ(join(pieces), "ab\xE2\x82");
}

TEST(Responses, ChatAndCompletionBodies) {
  ByteTokenizer tok({"Hel", "lo", "!", "\xC3"});
  rollout::Completion c;
  c.ids = {0, 1, 3};
  c.logprobs = {-0.1f, -0.2f, -0.3f};
  c.top_logprobs = {{{0, -0.1f}, {2, -2.f}}, {{1, -0.2f}, {0, -3.f}}, {{3, -0.3f}, {2, -1.f}}};
  c.text = "Hello";
  c.finish_reason = "length";
  serve::ParsedRequest req;
  req.prompts = {{5, 6, 7}};
  req.n = 2;
  req.logprobs = true;
  req.top_logprobs = 1;
  serve::ResponseMeta meta{"chatcmpl-x", 7, "tiny"};
  auto body = serve::response_body(req, meta, {{c, c}}, tok);
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["choices"].size(), 2u);
  EXPECT_EQ(body["choices"][1]["index"], 1);
  EXPECT_EQ(body["choices"][0]["message"]["content"], "Hello");
  const json& lp = body["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(lp.size(), 3u);
  EXPECT_EQ(lp[1]["token"], "lo");
  EXPECT_FLOAT_EQ(lp[1]["logprob"].get<float>(), -0.2f);
  EXPECT_EQ(lp[1]["top_logprobs"].size(), 1u) << "as many alternatives as asked";
  EXPECT_EQ(lp[2]["token"], "\xEF\xBF\xBD") << "a lone byte becomes U+FFFD; bytes keep it";
  EXPECT_EQ(lp[2]["bytes"], json::array({0xC3}));
  EXPECT_EQ(body["usage"]["prompt_tokens"], 3) << "the prompt counts once, not per sample";
  EXPECT_EQ(body["usage"]["completion_tokens"], 6);

  req.endpoint = serve::Endpoint::kCompletions;
  auto text = serve::response_body(req, {"cmpl-x", 7, "tiny"}, {{c, c}}, tok);
  EXPECT_EQ(text["object"], "text_completion");
  EXPECT_EQ(text["choices"][0]["text"], "Hello");
  const json& legacy = text["choices"][0]["logprobs"];
  EXPECT_EQ(legacy["tokens"], json::array({"Hel", "lo", "\xEF\xBF\xBD"}));
  EXPECT_EQ(legacy["text_offset"], json::array({0, 3, 5}));
  EXPECT_EQ(legacy["top_logprobs"][0], json({{"Hel", -0.1f}}));
  // Stream chunks: the role on the first, the finish reason on the last, usage on request.
  req.endpoint = serve::Endpoint::kChat;
  req.include_usage = true;
  auto first = serve::stream_chunk(req, meta, 1, "Hel", true, std::nullopt, &c, 0, 1, tok);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"], json({{"role", "assistant"}, {"content", "Hel"}}));
  EXPECT_EQ(first["choices"][0]["index"], 1);
  EXPECT_EQ(first["choices"][0]["logprobs"]["content"].size(), 1u);
  EXPECT_TRUE(first["usage"].is_null());
  auto last = serve::stream_chunk(req, meta, 1, "", false, std::string("stop"), &c, 3, 3, tok);
  EXPECT_EQ(last["choices"][0]["delta"], json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  auto usage = serve::usage_chunk(req, meta, serve::usage_json(req, {{c, c}}));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 9);
}
