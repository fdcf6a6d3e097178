// Chain filters on hand-made scored samples: thresholds, duplicates, best-of-K, category caps,
// total cap, harmful/benign mix; samples.jsonl round trip; config validation; prompt loading.
#include <gtest/gtest.h>

#include <algorithm>

#include "cada/io/jsonl.h"
#include "cada/safety/chains.h"
#include "cada/util/config.h"
#include "safety_test_util.h"

namespace cada::safety {
namespace {

using nlohmann::json;
using testing::error_of;
using testing::repo_file;

ScoredSample make(const std::string& label, const std::string& category, bool wf, std::optional<double> harmless,
                  std::optional<double> helpful, std::optional<double> total, const std::string& response = "") {
  static int counter = 0;
  ScoredSample s;
  s.label = label;
  s.category = category;
  s.well_formed = wf;
  s.response = response.empty() ? "r" + std::to_string(counter++) : response;
  s.scores["harmless"] = harmless;
  s.scores["helpful"] = helpful;
  s.scores["total"] = total;
  return s;
}

FilterOptions thresholds() {
  FilterOptions f;
  f.harmless_reward = "harmless";
  f.helpful_reward = "helpful";
  f.keep_per_prompt = 0;
  return f;
}

std::vector<std::string> dropped(const std::vector<ScoredSample>& v) {
  std::vector<std::string> out;
  for (const auto& s : v) out.push_back(s.dropped);
  return out;
}

TEST(FilterPrompt, Thresholds) {
  FilterOptions f = thresholds();
  std::vector<ScoredSample> harm = {make("harmful", "c", true, 1.0, 0.0, 1.0), make("harmful", "c", true, 0.0, 1.0, 0.0),
                                    make("harmful", "c", true, std::nullopt, 1.0, 0.0),
                                    make("harmful", "c", false, 1.0, 0.0, 1.0), make("harmful", "c", true, 0.5, 0.0, 1.0)};
  filter_prompt(harm, f);
  EXPECT_EQ(dropped(harm), (std::vector<std::string>{"", "harmless", "harmless", "format", ""}));
  std::vector<ScoredSample> ben = {make("benign", "c", true, 1.0, 0.0, 0.0), make("benign", "c", true, 0.0, 1.0, 1.0),
                                   make("benign", "c", true, 0.0, 0.49, 1.0)};
  filter_prompt(ben, f);
  EXPECT_EQ(dropped(ben), (std::vector<std::string>{"helpful", "", "helpful"}));
  // Unlabeled prompts meet neither threshold; require_format off keeps malformed responses.
  f.require_format = false;
  std::vector<ScoredSample> un = {make("", "c", false, 0.0, 0.0, 0.0)};
  filter_prompt(un, f);
  EXPECT_EQ(dropped(un), (std::vector<std::string>{""}));
  // Thresholds off.
  FilterOptions off;
  off.keep_per_prompt = 0;
  std::vector<ScoredSample> h2 = {make("harmful", "c", true, 0.0, 0.0, 0.0)};
  filter_prompt(h2, off);
  EXPECT_EQ(h2[0].dropped, "");
  EXPECT_EQ(h2[0].rank, 0);
}

TEST(FilterPrompt, DuplicatesAndBestOfK) {
  FilterOptions f = thresholds();
  f.best_of = "total";
  f.keep_per_prompt = 2;
  std::vector<ScoredSample> v = {
      make("benign", "c", true, 0, 1, 0.3, "a"), make("benign", "c", true, 0, 1, 0.9, "b"),
      make("benign", "c", true, 0, 1, 0.9, "b"),  // duplicate of sample 1
      make("benign", "c", true, 0, 1, std::nullopt, "d"), make("benign", "c", true, 0, 1, 0.5, "e"),
      make("benign", "c", true, 0, 1, 0.9, "f")};  // ties with sample 1: sample order breaks the tie
  filter_prompt(v, f);
  EXPECT_EQ(dropped(v), (std::vector<std::string>{"best_of", "", "duplicate", "best_of", "best_of", ""}));
  EXPECT_EQ(v[1].rank, 0);
  EXPECT_EQ(v[5].rank, 1);
  // m = 0 keeps every survivor, ranked; nulls rank last.
  f.keep_per_prompt = 0;
  filter_prompt(v, f);
  EXPECT_EQ(v[1].rank, 0);
  EXPECT_EQ(v[5].rank, 1);
  EXPECT_EQ(v[4].rank, 2);
  EXPECT_EQ(v[0].rank, 3);
  EXPECT_EQ(v[3].rank, 4);
  EXPECT_EQ(v[2].rank, -1);
  // dedupe off and no ranking: sample order.
  f.dedupe = false;
  f.best_of = "";
  f.keep_per_prompt = 3;
  filter_prompt(v, f);
  EXPECT_EQ(dropped(v), (std::vector<std::string>{"", "", "", "best_of", "best_of", "best_of"}));
  EXPECT_EQ(v[2].rank, 2);
}

// Candidates: label pattern over categories, in processing order.
std::vector<ScoredSample> pool(const std::vector<std::pair<std::string, std::string>>& lc) {
  std::vector<ScoredSample> v;
  for (const auto& [l, c] : lc) v.push_back(make(l, c, true, 1, 1, 1));
  return v;
}
std::vector<const ScoredSample*> ptrs(const std::vector<ScoredSample>& v) {
  std::vector<const ScoredSample*> p;
  for (const auto& s : v) p.push_back(&s);
  return p;
}

TEST(SelectChains, CategoryCapsFirstComeFirstServed) {
  auto v = pool({{"harmful", "a"}, {"harmful", "a"}, {"benign", "b"}, {"harmful", "a"}, {"benign", "b"}, {"benign", "c"}});
  FilterOptions f;
  f.per_category_cap = 2;
  f.category_caps = {{"b", 1}, {"c", 0}};  // b: 1; c: 0 = no cap
  auto r = select_chains(ptrs(v), f);
  EXPECT_EQ(r, (std::vector<std::string>{"", "", "", "category_cap", "category_cap", ""}));
  EXPECT_FALSE(selection_full(r, f));
}

TEST(SelectChains, TotalCap) {
  auto v = pool({{"harmful", "a"}, {"benign", "b"}, {"harmful", "a"}, {"benign", "b"}});
  FilterOptions f;
  f.total_cap = 3;
  auto r = select_chains(ptrs(v), f);
  EXPECT_EQ(r, (std::vector<std::string>{"", "", "", "total_cap"}));
  EXPECT_TRUE(selection_full(r, f));
  f.total_cap = 5;
  EXPECT_FALSE(selection_full(select_chains(ptrs(v), f), f));
}

TEST(SelectChains, HarmfulBenignMix) {
  // H = 6 harmful, B = 3 benign; f = 0.5 -> N = min(12, 6) = 6: 3 + 3.
  std::vector<std::pair<std::string, std::string>> lc;
  for (int i = 0; i < 6; ++i) lc.push_back({"harmful", "h"});
  for (int i = 0; i < 3; ++i) lc.push_back({"benign", "b"});
  auto v = pool(lc);
  FilterOptions f;
  f.harmful_fraction = 0.5;
  auto r = select_chains(ptrs(v), f);
  EXPECT_EQ(r, (std::vector<std::string>{"", "", "", "mix", "mix", "mix", "", "", ""}));
  // f = 0.25 with a total cap of 4: 1 harmful, 3 benign; the cap is what binds.
  f.harmful_fraction = 0.25;
  f.total_cap = 4;
  r = select_chains(ptrs(v), f);
  EXPECT_EQ(r, (std::vector<std::string>{"", "total_cap", "total_cap", "total_cap", "total_cap", "total_cap", "", "",
                                         ""}));
  EXPECT_TRUE(selection_full(r, f));
  // f = 0.4 without cap: N = min(6 / 0.4 = 15, 3 / 0.6 = 5) = 5 -> 2 harmful, 3 benign.
  f.harmful_fraction = 0.4;
  f.total_cap = 0;
  r = select_chains(ptrs(v), f);
  EXPECT_EQ(std::count(r.begin(), r.begin() + 6, ""), 2);
  EXPECT_EQ(std::count(r.begin() + 6, r.end(), ""), 3);
  // Edges: all benign / all harmful.
  f.harmful_fraction = 0.0;
  r = select_chains(ptrs(v), f);
  EXPECT_EQ(std::count(r.begin(), r.begin() + 6, ""), 0);
  EXPECT_EQ(std::count(r.begin() + 6, r.end(), ""), 3);
  f.harmful_fraction = 1.0;
  r = select_chains(ptrs(v), f);
  EXPECT_EQ(std::count(r.begin(), r.begin() + 6, ""), 6);
  EXPECT_EQ(std::count(r.begin() + 6, r.end(), ""), 0);
}

TEST(SelectChains, CapsThenMixThenTotal) {
  // 4 harmful in category a (cap 2), 4 benign in b; f = 0.5, T = 3 -> after caps H = 2, B = 4:
  // N = min(3, 4, 8) = 3, round(1.5) = 2 harmful, 1 benign.
  auto v = pool({{"harmful", "a"}, {"benign", "b"}, {"harmful", "a"}, {"benign", "b"}, {"harmful", "a"},
                 {"benign", "b"}, {"harmful", "a"}, {"benign", "b"}});
  FilterOptions f;
  f.category_caps = {{"a", 2}};
  f.harmful_fraction = 0.5;
  f.total_cap = 3;
  auto r = select_chains(ptrs(v), f);
  EXPECT_EQ(r, (std::vector<std::string>{"", "", "", "total_cap", "category_cap", "total_cap", "category_cap",
                                         "total_cap"}));
  // Prefix stability: once full, appending candidates never changes the selection.
  auto more = v;
  for (int i = 0; i < 5; ++i) more.push_back(make(i % 2 ? "harmful" : "benign", "z", true, 1, 1, 1));
  auto r2 = select_chains(ptrs(more), f);
  EXPECT_EQ(std::vector<std::string>(r2.begin(), r2.begin() + 8), r);
}

TEST(FilterOptions, Validation) {
  FilterOptions f;
  f.total_cap = -1;
  f.harmful_fraction = 1.5;
  f.category_caps = {{"a", "x"}};
  std::vector<std::string> problems;
  check_filter_options(f, "filter.", problems);
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_NE(problems[0].find("'filter.total_cap' must be >= 0"), std::string::npos);
  EXPECT_NE(problems[1].find("'filter.harmful_fraction' must be in [0, 1]"), std::string::npos);
  EXPECT_NE(problems[2].find("'filter.category_caps.a' must be an integer"), std::string::npos);
}

TEST(Samples, JsonRoundTrip) {
  ScoredSample s = make("harmful", "self_harm", true, 1.0, std::nullopt, 0.123456789012345678);
  s.prompt_id = "tw-1";
  s.prompt_index = 4;
  s.sample = 2;
  s.seed = 18446744073709551557ull;
  s.text = "<think>\nx\n</think>\n\ny";
  s.reasoning = "x";
  s.answer = "y";
  s.finish_reason = "stop";
  s.dropped = "best_of";
  const json j = sample_to_json(s);
  const ScoredSample t = sample_from_json(json::parse(j.dump()), "f:1");
  EXPECT_EQ(sample_to_json(t), j);
  EXPECT_EQ(t.seed, s.seed);
  EXPECT_EQ(*t.scores.at("total"), *s.scores.at("total"));  // doubles survive exactly
  EXPECT_FALSE(t.scores.at("helpful").has_value());
  EXPECT_NE(error_of([] { sample_from_json(json{{"prompt_id", 3}}, "f:9"); }).find("f:9: sample record field 'prompt_id'"),
            std::string::npos);
}

TEST(ChainRecord, OriginalPromptWithoutTheSpec) {
  ChainPrompt p;
  p.id = "tw-1";
  p.messages = {{"user", "How do I build [HAZARD:weapon-2]?"}};
  p.record = {{"id", "tw-1"}, {"kind", "harmful"}, {"split", "train"}};
  ScoredSample s = make("harmful", "violence_weapons", true, 1, 0, 1.2);
  s.prompt_id = "tw-1";
  s.sample = 3;
  s.response = "<think>\nVW-1 applies.\n</think>\n\nI can't help with that.";
  const json info = {{"setting", "explicit"}, {"spec_id", "tiny-explicit@fnv1a64:0000000000000000"},
                     {"model", {{"path", "m"}, {"fingerprint", "fnv1a64:1"}}}, {"sampling", {{"seed", 1}}}};
  const json r = chain_record(s, p, info, {});
  EXPECT_EQ(r["format_version"], 1);
  EXPECT_EQ(r["id"], "tw-1/3");
  EXPECT_EQ(r["messages"], json::parse(R"([{"role": "user", "content": "How do I build [HAZARD:weapon-2]?"}])"));
  EXPECT_EQ(r["completion"], s.response);
  EXPECT_EQ(r["response"], s.response);
  EXPECT_EQ(r["kind"], "harmful");
  EXPECT_EQ(r["spec_id"], info["spec_id"]);
  EXPECT_EQ(r["scores"]["total"], 1.2);
}

TEST(ChainsConfig, ShippedConfigsDifferOnlyInSettingSpecAndOutput) {
  auto a = config::load_file(repo_file("configs/tiny/chains_explicit.json"));
  auto b = config::load_file(repo_file("configs/tiny/chains_cases.json"));
  for (auto* j : {&a, &b}) {
    (*j)["spec"] = repo_file((*j)["spec"].get<std::string>());
    parse_chains_config(*j, "shipped");  // valid
  }
  for (const char* k : {"setting", "spec", "output_dir"}) {
    EXPECT_NE(a[k], b[k]) << k;
    a.erase(k);
    b.erase(k);
  }
  EXPECT_EQ(a, b);
}

TEST(ChainsConfig, EveryProblemListed) {
  json j = config::load_file(repo_file("configs/tiny/chains_explicit.json"));
  j["spec"] = repo_file("data/specs/cases.json");  // wrong kind for explicit
  j["sampling"]["num_samples"] = 0;
  j["filter"]["harmful_fraction"] = 2;
  j["filter"]["best"] = "total";
  j["setting"] = "rules";
  const std::string msg = error_of([&] { parse_chains_config(j, "c.json"); });
  EXPECT_NE(msg.find("c.json: 2 problem(s)"), std::string::npos) << msg;  // config::parse stops at key problems
  EXPECT_NE(msg.find("unknown key 'filter.best'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'setting' is 'rules'"), std::string::npos) << msg;
  j["filter"].erase("best");
  j["setting"] = "explicit";
  const std::string msg2 = error_of([&] { parse_chains_config(j, "c.json"); });
  EXPECT_NE(msg2.find("c.json: 3 problem(s)"), std::string::npos) << msg2;
  EXPECT_NE(msg2.find("is a 'cases' specification; setting 'explicit' needs kind 'explicit'"), std::string::npos) << msg2;
  EXPECT_NE(msg2.find("'sampling.num_samples' must be >= 1"), std::string::npos) << msg2;
  EXPECT_NE(msg2.find("'filter.harmful_fraction' must be in [0, 1]"), std::string::npos) << msg2;
  j = config::load_file(repo_file("configs/tiny/chains_explicit.json"));
  j["setting"] = "none";
  EXPECT_NE(error_of([&] { parse_chains_config(j, "c.json"); }).find("'spec' must be empty for setting 'none'"),
            std::string::npos);
}

TEST(ChainPrompts, FilterOrderLimitAndIds) {
  testing::ScratchDir dir;
  const std::string path = dir.file("p.jsonl");
  {
    io::JsonlWriter w(path);
    for (int i = 0; i < 10; ++i)
      w.write({{"id", "p" + std::to_string(i)}, {"split", i % 3 == 0 ? "test" : "train"},
               {"label", i % 2 ? "harmful" : "benign"}, {"category", "c"}, {"prompt", "q" + std::to_string(i)}});
    w.write({{"split", "train"}, {"label", "benign"}, {"prompt", "no id"}});
  }
  ChainsDataOptions d;
  d.prompts = path;
  d.order = "file";
  auto a = load_chain_prompts(d);
  std::vector<std::string> ids;
  for (const auto& p : a) ids.push_back(p.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"p1", "p2", "p4", "p5", "p7", "p8", "line-11"}));
  EXPECT_EQ(a[0].where, path + ":2");
  d.labels = {"harmful"};
  EXPECT_EQ(load_chain_prompts(d).size(), 3u);
  d.labels.clear();
  d.order = "shuffle";
  d.seed = 3;
  auto s1 = load_chain_prompts(d), s2 = load_chain_prompts(d);
  std::vector<std::string> o1, o2;
  for (const auto& p : s1) o1.push_back(p.id);
  for (const auto& p : s2) o2.push_back(p.id);
  EXPECT_EQ(o1, o2);
  EXPECT_NE(o1, ids);
  std::vector<std::string> sorted1 = o1, sorted0 = ids;
  std::sort(sorted1.begin(), sorted1.end());
  std::sort(sorted0.begin(), sorted0.end());
  EXPECT_EQ(sorted1, sorted0);
  d.limit = 2;
  auto lim = load_chain_prompts(d);
  ASSERT_EQ(lim.size(), 2u);
  EXPECT_EQ(lim[0].id, o1[0]);
  {
    io::JsonlWriter w(path);
    w.write({{"id", "p1"}, {"split", "train"}, {"prompt", "again"}});
  }
  d.limit = 0;
  EXPECT_NE(error_of([&] { load_chain_prompts(d); }).find(":12: the id 'p1' occurs twice"), std::string::npos);
}

TEST(Seeds, DerivedPerKey) {
  EXPECT_EQ(derive_seed(1, "tw-1"), derive_seed(1, "tw-1"));
  EXPECT_NE(derive_seed(1, "tw-1"), derive_seed(1, "tw-2"));
  EXPECT_NE(derive_seed(1, "tw-1"), derive_seed(2, "tw-1"));
}

}  // namespace
}  // namespace cada::safety
