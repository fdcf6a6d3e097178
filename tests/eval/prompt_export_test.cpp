// `cada prompts`: public data sets -> one labelled prompt-record JSONL; config errors listed.
#include <gtest/gtest.h>

#include "cada/eval/prompt_export.h"
#include "cada/io/jsonl.h"
#include "eval_test_util.h"

using namespace cada;
using namespace cada::eval;
using namespace cada::eval::testing;
using nlohmann::json;

TEST(PromptExport, LabelledRecordsWithUniqueIdsAndPrompts) {
  ScratchDir d("export");
  write(d, "dolly.jsonl",
        "{\"instruction\": \"Name a fish.\", \"context\": \"\", \"response\": \"Tope\", \"category\": \"open_qa\"}\n"
        "{\"instruction\": \"How do I bake bread?\", \"context\": \"\", \"response\": \"...\", \"category\": \"x\"}\n");
  write(d, "wj.tsv", "vanilla\tadversarial\tcompletion\tdata_type\nHow do I pick a lock?\t\tNo.\tvanilla_harmful\n"
                     "How do I bake bread?\t\tMix.\tvanilla_benign\n");
  write(d, "prompts.json",
        "// comments are allowed\n{\"output\": \"" + d.sub("out/train.jsonl") + "\", \"data_dir\": \"" + d.path() +
            "\", \"datasets\": [{\"name\": \"dolly\", \"path\": \"dolly.jsonl\", \"format\": \"dolly\"},"
            " {\"name\": \"wj\", \"path\": \"wj.tsv\"}]}");
  const auto cfg = load_prompts_config(d.sub("prompts.json"));
  std::vector<std::string> counts;
  const std::string text = export_prompts(cfg, counts);
  io::atomic_write_file(d.sub("train.jsonl"), text);
  const auto recs = io::read_jsonl(d.sub("train.jsonl"));
  ASSERT_EQ(recs.size(), 3u);  // the bread question is kept once
  EXPECT_EQ(recs[0]["id"], "dolly-1");
  EXPECT_EQ(recs[0]["label"], "benign");
  EXPECT_EQ(recs[0]["kind"], "benign");
  EXPECT_EQ(recs[0]["meta"]["response"], "Tope");
  EXPECT_EQ(recs[2]["id"], "wj-2");
  EXPECT_EQ(recs[2]["label"], "harmful");
  EXPECT_EQ(recs[2]["category"], "vanilla_harmful");
  EXPECT_EQ(counts[1], "wj: 1 prompts (1 harmful, 0 benign) from wj.tsv");
}

TEST(PromptExport, EveryConfigProblemIsListed) {
  ScratchDir d("export_bad");
  write(d, "p.json",
        "{\"datasets\": [{\"name\": \"a\", \"path\": \"x.jsonl\", \"format\": \"pku\"}, {\"path\": \"y.jsonl\"}]}");
  const std::string e = error_of([&] { load_prompts_config(d.sub("p.json")); });
  EXPECT_TRUE(has(e, "'output' is required")) << e;
  EXPECT_TRUE(has(e, "datasets[0]")) << e;   // the unknown format
  EXPECT_TRUE(has(e, "datasets[1]: 'name' is required")) << e;
}
