// MMLU reading / prompt / choice and GSM8K answer extraction against the published formats.
#include <gtest/gtest.h>

#include "cada/eval/utility.h"
#include "eval_test_util.h"

using namespace cada::eval;
using namespace cada::eval::testing;

TEST(Gsm8kExtract, MarkerBoxedAndLastNumber) {
  EXPECT_EQ(*extract_number("She pays 3 * 6 = 18 dollars.\n#### 18"), "18");
  EXPECT_EQ(*extract_number("#### 1,234,567"), "1234567");
  EXPECT_EQ(*extract_number("The total is $1,250.00 in all."), "1250");
  EXPECT_EQ(*extract_number("It drops by 7, so the answer is -12 degrees."), "-12");
  EXPECT_EQ(*extract_number("So x = \\boxed{-3.50} and 7 more steps."), "-3.5");
  EXPECT_EQ(*extract_number("Answer: \\boxed{\\frac{42}{1}}"), "42");
  EXPECT_EQ(*extract_number("first 5 then 12 cm."), "12");
  EXPECT_EQ(*extract_number("#### +0007"), "7");
  EXPECT_EQ(*extract_number("#### -0"), "0");
  EXPECT_FALSE(extract_number("no digits at all").has_value());
}

TEST(Gsm8kExtract, CorrectAgainstReference) {
  EXPECT_TRUE(gsm8k_correct("The answer is 1,000 apples.", "1000"));
  EXPECT_TRUE(gsm8k_correct("#### -5\nI hope 3 helps", "-5"));
  EXPECT_FALSE(gsm8k_correct("The answer is 5.", "-5"));
  EXPECT_FALSE(gsm8k_correct("I refuse.", "5"));
}

TEST(Gsm8kRead, ReferenceAfterMarkerAndErrors) {
  ScratchDir dir("gsm8k");
  const auto p = write(dir, "g.jsonl",
                       "{\"question\": \"q1\", \"answer\": \"2 + 2 = <<2+2=4>>4\\n#### 4\"}\n"
                       "{\"question\": \"q2\", \"answer\": \"lots\\n#### 1,200\"}\n");
  const auto g = read_gsm8k_jsonl(p);
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].answer, "4");
  EXPECT_EQ(g[1].answer, "1200");
  const auto bad = write(dir, "b.jsonl", "{\"question\": \"q\", \"answer\": \"no marker 4\"}\n");
  const std::string e = error_of([&] { read_gsm8k_jsonl(bad); });
  EXPECT_TRUE(has(e, "record 1")) << e;
  EXPECT_TRUE(has(e, "####")) << e;
}

TEST(Mmlu, HeaderlessCsvPromptAndPick) {
  ScratchDir dir("mmlu");
  const auto p = write(dir, "abstract_algebra_test.csv",
                       "\"Find 2+2, please\",3,4,5,6,B\nWhat is x?,a,b,c,d,D\n");
  const auto items = read_mmlu_csv(p, "abstract algebra");
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].answer, 1);
  EXPECT_EQ(items[1].answer, 3);
  EXPECT_EQ(mmlu_prompt(items[0]),
            "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
            "Find 2+2, please\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:");
  EXPECT_EQ(mmlu_continuations(), (std::vector<std::string>{" A", " B", " C", " D"}));
  EXPECT_EQ(mmlu_pick({-3.0, -1.0, -2.0, -1.5}), 1);
  EXPECT_EQ(mmlu_pick({-1.0, -1.0, -2.0, -1.5}), 0);
  const auto bad = write(dir, "bad.csv", "q,a,b,c,d,A\nq2,a,b,c,d,E\n");
  const std::string e = error_of([&] { read_mmlu_csv(bad, "x"); });
  EXPECT_TRUE(has(e, "bad.csv:2")) << e;
  EXPECT_TRUE(has(e, "A, B, C or D")) << e;
}
