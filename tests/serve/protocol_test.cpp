// OpenAI request parsing: prompts to ids, defaults, limits, and every problem as an ApiError with
// the status, the parameter and OpenAI's error body.
#include <gtest/gtest.h>

#include "../reward/reward_test_util.h"
#include "cada/serve/protocol.h"
#include "cada/text/chat_template.h"

using namespace cada;
using nlohmann::json;

namespace {

class Protocol : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new reward::testing::ScratchDir("serve_protocol");
    reward::testing::write_tokenizer(dir_->path());
    tok_ = text::load_tokenizer(dir_->path()).release();
    tmpl_ = text::load_chat_template(dir_->path(), "").release();
  }
  static void TearDownTestSuite() {
    delete tok_;
    delete tmpl_;
    delete dir_;
  }
  serve::ServeContext ctx(int64_t context = 64) const {
    serve::ServeContext c;
    c.model_name = "tiny";
    c.tokenizer = tok_;
    c.chat_template = tmpl_;
    c.context_length = context;
    c.max_n = 8;
    c.max_top_logprobs = 5;
    return c;
  }
  json chat(json extra = json::object()) const {
    json b = {{"model", "tiny"}, {"messages", {{{"role", "user"}, {"content", "How do I bake bread?"}}}}};
    b.update(extra);
    return b;
  }
  // The ApiError parse_request throws (status 0 when it does not throw).
  serve::ApiError error(const json& body, serve::Endpoint ep = serve::Endpoint::kChat, int64_t context = 64) const {
    try {
      serve::parse_request(body, ep, ctx(context));
    } catch (const serve::ApiError& e) {
      return e;
    }
    return serve::ApiError(0, "no error");
  }
  static reward::testing::ScratchDir* dir_;
  static text::Tokenizer* tok_;
  static text::ChatTemplate* tmpl_;
};

reward::testing::ScratchDir* Protocol::dir_ = nullptr;
text::Tokenizer* Protocol::tok_ = nullptr;
text::ChatTemplate* Protocol::tmpl_ = nullptr;

}  // namespace

TEST_F(Protocol, ChatRendersTheTemplateAndResolvesDefaults) {
  auto r = serve::parse_request(chat(), serve::Endpoint::kChat, ctx());
  const auto want = tok_->encode(tmpl_->render({{"user", "How do I bake bread?"}}, true), false);
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0], want);
  const int64_t room = 64 - static_cast<int64_t>(want.size());
  EXPECT_EQ(r.max_new_tokens, std::vector<int64_t>{room}) << "max_tokens defaults to what the context leaves";
  EXPECT_EQ(r.n, 1);
  EXPECT_FALSE(r.seed.has_value());
  EXPECT_FLOAT_EQ(r.params.temperature, 1.0f);
  // Content parts (as the OpenAI API sends them) are joined into one text.
  auto parts = serve::parse_request(
      chat({{"messages", {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", "How do I "}},
                                                            {{"type", "text"}, {"text", "bake bread?"}}}}}}}}),
      serve::Endpoint::kChat, ctx());
  EXPECT_EQ(parts.prompts[0], want);
}

TEST_F(Protocol, SamplingFieldsAndRequests) {
  auto r = serve::parse_request(chat({{"temperature", 0.5}, {"top_p", 0.9}, {"top_k", -1}, {"min_p", 0.1},
                                      {"repetition_penalty", 1.2}, {"n", 3}, {"seed", 42}, {"max_tokens", 7},
                                      {"stop", "\n"}, {"logprobs", true}, {"top_logprobs", 4},
                                      {"presence_penalty", 0}, {"tools", json::array()}}),
                                serve::Endpoint::kChat, ctx());
  EXPECT_FLOAT_EQ(r.params.temperature, 0.5f);
  EXPECT_EQ(r.params.top_k, 0) << "-1 turns top-k off, as in vLLM";
  EXPECT_EQ(r.params.stop, std::vector<std::string>{"\n"});
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 4);
  auto reqs = r.requests(/*random_seed=*/9);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].seed, 42u) << "sample j of the request draws from stream (seed, j), as cada generate does";
  EXPECT_EQ(reqs[0].n, 3);
  EXPECT_EQ(reqs[0].params.max_new_tokens, 7);
  EXPECT_EQ(reqs[0].params.top_logprobs, 4);
  EXPECT_EQ(serve::parse_request(chat(), serve::Endpoint::kChat, ctx()).requests(9)[0].seed, 9u);
}

TEST_F(Protocol, CompletionPromptForms) {
  using E = serve::Endpoint;
  const auto ids = tok_->encode("The quick brown fox", true);
  auto one = serve::parse_request({{"model", "tiny"}, {"prompt", "The quick brown fox"}, {"logprobs", 2}},
                                  E::kCompletions, ctx());
  EXPECT_EQ(one.prompts, std::vector<std::vector<int32_t>>{ids}) << "text prompts get the BOS token, as in vLLM";
  EXPECT_TRUE(one.logprobs);
  EXPECT_EQ(one.top_logprobs, 2);
  auto many = serve::parse_request({{"model", "tiny"}, {"prompt", {"The quick brown fox", "Hi"}}, {"max_tokens", 3}},
                                   E::kCompletions, ctx());
  EXPECT_EQ(many.prompts.size(), 2u);
  EXPECT_EQ(many.requests(1).size(), 2u);
  auto as_ids = serve::parse_request({{"model", "tiny"}, {"prompt", {5, 6, 7}}}, E::kCompletions, ctx());
  EXPECT_EQ(as_ids.prompts[0], (std::vector<int32_t>{5, 6, 7}));
  auto nested = serve::parse_request({{"model", "tiny"}, {"prompt", {{5, 6}, {7}}}}, E::kCompletions, ctx());
  EXPECT_EQ(nested.prompts.size(), 2u);
  EXPECT_EQ(error({{"model", "tiny"}, {"prompt", {5, 100000}}}, E::kCompletions).status(), 400);
  EXPECT_EQ(error({{"model", "tiny"}, {"prompt", json::array()}}, E::kCompletions).status(), 400);
  EXPECT_EQ(error({{"model", "tiny"}, {"prompt", 5}}, E::kCompletions).status(), 400);
  EXPECT_EQ(error({{"model", "tiny"}, {"messages", json::array()}}, E::kCompletions).status(), 400)
      << "messages belongs to chat";
}

TEST_F(Protocol, ProblemsAreApiErrors) {
  struct Case {
    json body;
    int status;
    std::string param, needle;
  };
  const std::vector<Case> cases = {
      {chat({{"temprature", 1}}), 400, "temprature", "Unrecognized request argument"},
      {chat({{"model", "gpt-4"}}), 404, "model", "does not exist"},
      {json{{"messages", chat()["messages"]}}, 400, "model", "'model' is required"},
      {chat({{"temperature", "hot"}}), 400, "temperature", "must be a number"},
      {chat({{"temperature", -1}}), 400, "temperature", ">= 0"},
      {chat({{"top_p", 0}}), 400, "top_p", "(0, 1]"},
      {chat({{"n", 9}}), 400, "n", "between 1 and 8"},
      {chat({{"n", 1.5}}), 400, "n", "integer"},
      {chat({{"max_tokens", 0}}), 400, "max_tokens", "between 1"},
      {chat({{"max_tokens", 1000}}), 400, "messages", "maximum context length is 64 tokens"},
      {chat({{"stop", {"a", 3}}}), 400, "stop", "list of strings"},
      {chat({{"stop", ""}}), 400, "stop", "empty"},
      {chat({{"top_logprobs", 2}}), 400, "top_logprobs", "needs 'logprobs'"},
      {chat({{"logprobs", true}, {"top_logprobs", 6}}), 400, "top_logprobs", "between 0 and 5"},
      {chat({{"stream_options", {{"include_usage", true}}}}), 400, "stream_options", "stream = true"},
      {chat({{"stream", true}, {"stream_options", {{"x", 1}}}}), 400, "stream_options", "unknown stream option"},
      {chat({{"presence_penalty", 0.5}}), 400, "presence_penalty", "not supported"},
      {chat({{"tools", {{{"type", "function"}}}}}), 400, "tools", "not supported"},
      {chat({{"response_format", {{"type", "json_object"}}}}), 400, "response_format", "not supported"},
      {chat({{"messages", {{{"role", "user"}}}}}), 400, "messages", "'content'"},
      {chat({{"messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}}}}), 400, "messages", "content parts"},
      {chat({{"messages", "Hi"}}), 400, "messages", "non-empty list"},
  };
  for (const auto& c : cases) {
    auto e = error(c.body);
    EXPECT_EQ(e.status(), c.status) << c.body.dump() << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(c.needle), std::string::npos) << e.what();
    const json b = e.body();
    EXPECT_EQ(b["error"]["param"], c.param) << e.what();
    EXPECT_EQ(b["error"]["type"], "invalid_request_error");
  }
  EXPECT_EQ(error(chat({{"max_tokens", 1000}})).body()["error"]["code"], "context_length_exceeded");
  EXPECT_EQ(error(chat({{"model", "x"}})).body()["error"]["code"], "model_not_found");
}

TEST_F(Protocol, BodiesAndErrorShapes) {
  EXPECT_THROW(serve::parse_body("{\"model\": "), serve::ApiError);
  EXPECT_THROW(serve::parse_body("[1, 2]"), serve::ApiError);
  EXPECT_THROW(serve::parse_body(""), serve::ApiError);
  EXPECT_EQ(serve::parse_body("{\"a\": 1}")["a"], 1);
  const json e = serve::error_body(503, "busy");
  EXPECT_EQ(e["error"]["message"], "busy");
  EXPECT_EQ(e["error"]["type"], "service_unavailable");
  EXPECT_TRUE(e["error"]["param"].is_null());
  EXPECT_EQ(serve::error_body(401, "key")["error"]["type"], "authentication_error");
  // A model without a chat template refuses chat requests, with a way out.
  auto c = ctx();
  c.chat_template = nullptr;
  try {
    serve::parse_request(chat(), serve::Endpoint::kChat, c);
    FAIL() << "no error";
  } catch (const serve::ApiError& e) {
    EXPECT_NE(std::string(e.what()).find("/v1/completions"), std::string::npos);
  }
}
