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
