#include <gtest/gtest.h>

#include "cada/util/config.h"

namespace {

struct Optim {
  double lr = 1e-5;
  std::string schedule = "cosine";
  template <class V> void visit(V& v) {
    v("lr", lr, "peak learning rate");
    v("schedule", schedule, "constant | linear | cosine", {"constant", "linear", "cosine"});
  }
};
struct Train {
  Optim optim;
  int64_t steps = 100;
  std::vector<std::string> stop;
  std::optional<int64_t> max_len;
  template <class V> void visit(V& v) {
    v.section("optim", optim, "optimizer");
    v("steps", steps, "optimizer steps");
    v("stop", stop, "stop strings");
    v("max_len", max_len, "optional limit");
  }
};

}  // namespace

TEST(Config, CommentsOverridesAndDefaults) {
  auto j = cada::config::parse_text("{\n // a comment\n \"steps\": 5, /* block */ \"optim\": {\"lr\": 0.1}\n}", "t.json");
  cada::config::apply_overrides(j, {"optim.schedule=linear", "stop=[\"a\",\"b\"]", "max_len=7"});
  auto t = cada::config::parse<Train>(j, "t.json");
  EXPECT_EQ(t.steps, 5);
  EXPECT_DOUBLE_EQ(t.optim.lr, 0.1);
  EXPECT_EQ(t.optim.schedule, "linear");
  EXPECT_EQ(t.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(t.max_len, 7);
  auto back = cada::config::to_json(t);
  EXPECT_EQ(back["optim"]["schedule"], "linear");
  auto lines = cada::config::describe(Train{});
  EXPECT_NE(std::find(lines.begin(), lines.end(), "optim.lr = 1e-05  # peak learning rate"), lines.end());
}

TEST(Config, ListsEveryProblemAtOnce) {
  auto j = cada::config::parse_text(
      R"({"steps": "many", "optim": {"lr": 1, "schedule": "cosinus", "momentum": 0.9}, "epochs": 3})", "c.json");
  try {
    cada::config::parse<Train>(j, "c.json");
    FAIL();
  } catch (const cada::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("4 problem(s)"), std::string::npos) << m;
    EXPECT_NE(m.find("'steps' must be an integer"), std::string::npos) << m;
    EXPECT_NE(m.find("'optim.schedule' is 'cosinus'"), std::string::npos) << m;
    EXPECT_NE(m.find("unknown key 'optim.momentum'"), std::string::npos) << m;
    EXPECT_NE(m.find("unknown key 'epochs'"), std::string::npos) << m;
  }
}

TEST(Config, SyntaxErrorNamesTheLine) {
  try {
    cada::config::parse_text("{\n\"a\": 1,\n\"b\": }\n", "bad.json");
    FAIL();
  } catch (const cada::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.json:3"), std::string::npos) << e.what();
  }
}

TEST(Config, OverridesIndexIntoLists) {
  auto j = cada::config::parse_text(R"({"rewards": {"rewards": [{"name": "a"}, {"name": "rm", "model": "x"}]},
                                       "datasets": [{"sample": 5}]})", "l.json");
  cada::config::apply_overrides(j, {"rewards.rewards.1.model=/m/rm", "datasets.0.sample=24", "datasets.0.seed=3"});
  EXPECT_EQ(j["rewards"]["rewards"][1]["model"], "/m/rm");
  EXPECT_EQ(j["rewards"]["rewards"][0]["name"], "a");
  EXPECT_EQ(j["datasets"][0]["sample"], 24);
  EXPECT_EQ(j["datasets"][0]["seed"], 3);
  auto err = [&](const std::string& o) {
    try {
      cada::config::apply_overrides(j, {o});
    } catch (const cada::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(err("datasets.4.sample=1").find("index 4 is past the end of 'datasets' (1 elements)"), std::string::npos)
      << err("datasets.4.sample=1");
  EXPECT_NE(err("datasets.0.sample.x=1").find("is not an object"), std::string::npos);
}

namespace {
struct Ranged {
  double beta2 = 0.999;
  int64_t every = 0;
  float temperature = 1.0f;
  template <class V> void visit(V& v) {
    v("beta2", beta2, "Adam second-moment decay", cada::config::Range::half_open(0, 1));
    v("every", every, "steps between checkpoints", cada::config::Range::at_least(0));
    v("temperature", temperature, "sampling temperature");
  }
};
struct Outer {
  Ranged optim;
  template <class V> void visit(V& v) { v.section("optim", optim, "optimizer"); }
};
std::string parse_error(const std::string& text) {
  try {
    cada::config::parse<Outer>(cada::config::parse_text(text, "c.json"), "c.json");
  } catch (const cada::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Config, RangesNameTheDottedKey) {
  EXPECT_EQ(parse_error(R"({"optim": {"beta2": 0.9, "every": 3}})"), "");
  const std::string e = parse_error(R"({"optim": {"beta2": 1.5, "every": -1}})");
  EXPECT_NE(e.find("'optim.beta2' must be in [0, 1), got 1.5"), std::string::npos) << e;
  EXPECT_NE(e.find("'optim.every' must be >= 0, got -1"), std::string::npos) << e;
  // The same check for values set by command-line flags.
  Outer o;
  o.optim.temperature = std::numeric_limits<float>::infinity();
  o.optim.every = -2;
  auto p = cada::config::range_problems(o);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_NE(p[0].find("'optim.every' must be >= 0"), std::string::npos) << p[0];
  EXPECT_NE(p[1].find("'optim.temperature' must be a finite number"), std::string::npos) << p[1];
  // describe() shows the range.
  bool shown = false;
  for (const auto& line : cada::config::describe(Outer{})) shown |= line.find("(in [0, 1))") != std::string::npos;
  EXPECT_TRUE(shown);
}

TEST(Config, DuplicateKeysAreRejectedWithTheirPath) {
  const std::string e = parse_error("{\"optim\": {\"every\": 1,\n \"every\": 2}}");
  EXPECT_NE(e.find("key 'optim.every' appears twice"), std::string::npos) << e;
  EXPECT_NE(parse_error(R"({"optim": {"every": 1}, "x": [{"a": 1}, {"a": 2}]})").find("unknown key 'x'"),
            std::string::npos);  // equal keys in different objects are fine
  EXPECT_NE(parse_error(R"({"x": [{"a": 1, "a": 2}]})").find("key 'x.0.a' appears twice"), std::string::npos)
      << parse_error(R"({"x": [{"a": 1, "a": 2}]})");
}

namespace {
struct Ints {
  int32_t batch = 1;
  uint64_t seed = 0;
  template <class V> void visit(V& v) {
    v("batch", batch, "rows");
    v("seed", seed, "seed");
  }
};
}  // namespace

TEST(Config, IntegersOutsideTheFieldAreRefusedNotWrapped) {
  auto err = [](const std::string& text) -> std::string {
    try {
      cada::config::parse<Ints>(cada::config::parse_text(text, "c.json"), "c.json");
    } catch (const cada::Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(err(R"({"batch": 4294967301})").find("'batch' must be a 32-bit integer, got 4294967301"), std::string::npos);
  EXPECT_NE(err(R"({"seed": -1})").find("'seed' must be a non-negative integer, got -1"), std::string::npos);
  EXPECT_EQ(err(R"({"batch": 7, "seed": 18446744073709551615})"), "");
  nlohmann::json j = nlohmann::json::parse(R"({"x": [1]})");
  EXPECT_THROW(cada::config::apply_overrides(j, {"x.99999999999999999999=1"}), cada::Error);
}
