// MMLU accuracy from a tiny model's letter log-probs, checked against a hand computation, and the
// utility tables of the report.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "cada/eval/utility_run.h"
#include "cada/model/loader.h"
#include "cada/model/transformer.h"
#include "cada/text/tokenizer.h"
#include "eval_test_util.h"

using namespace cada;
using namespace cada::eval;
using namespace cada::eval::testing;
using nlohmann::json;

TEST(UtilityRun, MmluAccuracyEqualsTheHandComputedOne) {
  ScratchDir d("mmlu");
  write_model(d.sub("m"), 0, 13);
  const std::string csv = write(d, "high_school_physics_test.csv",
                                "\"What is 2 + 2, \"\"roughly\"\"?\",3,4,5,22,B\n"
                                "Which colour is the sky?,green,red,blue,black,C\n"
                                "Pick the first letter.,a,b,c,d,A\n"
                                "Pick the last letter.,a,b,c,d,D\n");
  EXPECT_EQ(mmlu_subject(csv), "high school physics");
  const auto items = read_mmlu_csv(csv, mmlu_subject(csv));
  auto tok = text::load_tokenizer(d.sub("m"));
  torch::NoGradGuard no_grad;
  auto net = model::load_model(d.sub("m"), {"cpu", "float32"});
  net->eval();
  const json rows = score_mmlu(*net, *tok, items, /*batch_size=*/3);
  ASSERT_EQ(rows.size(), 4u);
  // By hand: one full forward per (prompt + letter), the letter tokens' log-softmax summed.
  int correct = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto prompt = tok->encode(mmlu_prompt(items[i]), true);
    std::vector<double> lp;
    for (const auto& c : mmlu_continuations()) {
      const auto letter = tok->encode(c, false);
      std::vector<int64_t> ids(prompt.begin(), prompt.end());
      ids.insert(ids.end(), letter.begin(), letter.end());
      model::ForwardInput in;
      in.input_ids = at::tensor(ids, at::kLong).unsqueeze(0);
      auto logp = at::log_softmax(net->head(net->forward(in).hidden).to(at::kDouble), -1)[0];  // (T,V)
      double s = 0;
      for (size_t k = 0; k < letter.size(); ++k) s += logp[prompt.size() - 1 + k][letter[k]].item<double>();
      lp.push_back(s);
    }
    const int pick = static_cast<int>(std::max_element(lp.begin(), lp.end()) - lp.begin());
    correct += pick == items[i].answer;
    EXPECT_EQ(rows[i]["pick"], pick) << i;
    for (size_t c = 0; c < 4; ++c) EXPECT_NEAR(rows[i]["logprobs"][c].get<double>(), lp[c], 1e-4) << i << " " << c;
  }
  const json ds = utility_datasets({{"mmlu", rows}}, {0, 0.95, 0});
  const auto& acc = ds["mmlu"]["selectors"]["all"]["overall"]["accuracy"];
  EXPECT_DOUBLE_EQ(acc["mean"].get<double>(), correct / 4.0);
  EXPECT_EQ(acc["n"], 4);
  EXPECT_EQ(ds["mmlu"]["categories"], json({"high school physics"}));
}

TEST(UtilityRun, Gsm8kGradesTheAnswerPart) {
  const std::vector<Gsm8kItem> items = {{"q1", "1234"}, {"q2", "-5"}, {"q3", "18"}, {"q4", "7"}};
  const json rows = grade_gsm8k(items, {"<think>\n1000 + 234\n</think>\n\nThe total is 1,234 apples.",
                                        "It drops by -5 degrees, so #### -5.",
                                        "<think>\nthe answer is 18\n</think>\n\nI am not sure.",
                                        "<think>\ncut off at 7"});
  EXPECT_TRUE(rows[0]["correct"].get<bool>());
  EXPECT_TRUE(rows[1]["correct"].get<bool>());
  EXPECT_FALSE(rows[2]["correct"].get<bool>());  // the number sits in the reasoning only
  EXPECT_FALSE(rows[3]["correct"].get<bool>());  // truncated: no answer
  EXPECT_TRUE(rows[3]["extracted"].is_null());
  const json ds = utility_datasets({{"gsm8k", rows}}, {0, 0.95, 0});
  EXPECT_DOUBLE_EQ(ds["gsm8k"]["selectors"]["all"]["overall"]["accuracy"]["mean"].get<double>(), 0.5);
}
