// cada compare: eval reports side by side.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cada/eval/compare.h"
#include "cada/util/error.h"
#include "eval_test_util.h"

namespace cada::eval {
namespace {

using nlohmann::json;
using testing::ScratchDir;

json summary(double mean, double lo, double hi, int64_t n) {
  return {{"mean", mean}, {"ci_low", lo}, {"ci_high", hi}, {"n", n}};
}

// A report in the layout EvalRunner::judge writes (only what compare reads).
json report(double harmful_refusal, double benign_refusal, bool with_borderline) {
  json r;
  r["model"] = {{"path", "m"}, {"fingerprint", "fnv1a64:0"}};
  auto ds = [](json overall, json jb) {
    return json{{"selectors", {{"all", {{"overall", overall}, {"by_jailbreak", {{"none", jb}}}}}}}};
  };
  r["datasets"]["harmful"] = ds({{"refusal_rate", summary(harmful_refusal, harmful_refusal - 0.1, harmful_refusal + 0.1, 40)},
                                 {"unsafe_compliance", summary(1 - harmful_refusal, 0, 1, 40)}},
                                {{"refusal_rate", summary(0.5, 0.4, 0.6, 20)}});
  r["datasets"]["benign"] = ds({{"refusal_rate", summary(benign_refusal, 0, 0.2, 30)},
                                {"over_refusal", summary(benign_refusal, 0, 0.2, 30)}},
                               {{"refusal_rate", summary(0.0, 0, 0, 30)}});
  if (with_borderline)
    r["datasets"]["borderline"] = ds({{"over_refusal", summary(0.3, 0.2, 0.4, 10)}}, json::object());
  return r;
}

TEST(Compare, RowsPerDatasetAndMetricWithACellPerRun) {
  ScratchDir dir("compare_rows");
  const auto a = testing::write(dir, "a.json", report(0.1, 0.05, false).dump());
  const auto b = testing::write(dir, "b.json", report(0.9, 0.10, true).dump());
  auto cmp = compare_reports({{"base", a}, {"aligned", b}}, {});
  ASSERT_EQ(cmp["runs"].size(), 2u);
  // Without a selection, datasets and metrics come in name order:
  // benign {over_refusal, refusal_rate}, borderline {over_refusal}, harmful {refusal_rate, unsafe_compliance}.
  ASSERT_EQ(cmp["rows"].size(), 5u);
  EXPECT_EQ(cmp["rows"][3]["dataset"], "harmful");
  EXPECT_EQ(cmp["rows"][3]["metric"], "refusal_rate");
  EXPECT_DOUBLE_EQ(cmp["rows"][3]["cells"]["base"]["mean"].get<double>(), 0.1);
  EXPECT_DOUBLE_EQ(cmp["rows"][3]["cells"]["aligned"]["mean"].get<double>(), 0.9);
  EXPECT_EQ(cmp["rows"][2]["dataset"], "borderline");
  EXPECT_TRUE(cmp["rows"][2]["cells"]["base"].is_null());  // base has no borderline dataset

  const auto md = compare_markdown(cmp);
  EXPECT_NE(md.find("| dataset | metric | base | aligned |"), std::string::npos) << md;
  EXPECT_NE(md.find("| harmful | refusal_rate | 0.100 [0.000, 0.200] | 0.900 [0.800, 1.000] |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| borderline | over_refusal | - |"), std::string::npos) << md;

  auto img = compare_chart(cmp);
  EXPECT_GT(img.width(), 100);
  EXPECT_GT(img.height(), 5 * 2 * 14);  // 10 bars
}

TEST(Compare, MetricDatasetAndJailbreakSelection) {
  ScratchDir dir("compare_select");
  const auto a = testing::write(dir, "a.json", report(0.1, 0.05, true).dump());
  CompareOptions o;
  o.metrics = {"over_refusal", "refusal_rate"};
  o.datasets = {"benign", "harmful"};
  auto cmp = compare_reports({{"x", a}}, o);
  ASSERT_EQ(cmp["rows"].size(), 3u);
  EXPECT_EQ(cmp["rows"][0]["dataset"], "benign");
  EXPECT_EQ(cmp["rows"][0]["metric"], "over_refusal");
  EXPECT_EQ(cmp["rows"][1]["metric"], "refusal_rate");
  EXPECT_EQ(cmp["rows"][2]["dataset"], "harmful");

  CompareOptions j;
  j.jailbreak = "none";
  j.datasets = {"harmful"};
  auto cj = compare_reports({{"x", a}}, j);
  ASSERT_EQ(cj["rows"].size(), 1u);
  EXPECT_DOUBLE_EQ(cj["rows"][0]["cells"]["x"]["mean"].get<double>(), 0.5);
}

TEST(Compare, BadInputIsNamed) {
  ScratchDir dir("compare_bad");
  const auto a = testing::write(dir, "a.json", report(0.1, 0.05, false).dump());
  const auto junk = testing::write(dir, "junk.json", "{\"not\": 1}");
  const auto broken = testing::write(dir, "broken.json", "{");
  EXPECT_NE(testing::error_of([&] { compare_reports({{"a", a}, {"a", a}}, {}); }).find("given twice"), std::string::npos);
  EXPECT_NE(testing::error_of([&] { compare_reports({{"a", dir.sub("none.json")}}, {}); }).find("does not exist"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] { compare_reports({{"a", junk}}, {}); }).find("not a cada eval report"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] { compare_reports({{"a", broken}}, {}); }).find("not valid JSON"), std::string::npos);
  CompareOptions o;
  o.selector = "latent";
  EXPECT_NE(testing::error_of([&] { compare_reports({{"a", a}}, o); }).find("no selector 'latent'"), std::string::npos);
  CompareOptions d;
  d.datasets = {"xstest"};
  EXPECT_NE(testing::error_of([&] { compare_reports({{"a", a}}, d); }).find("no report has dataset 'xstest'"),
            std::string::npos);
}

}  // namespace
}  // namespace cada::eval
