#include "cada/util/strings.h"

#include <gtest/gtest.h>

#include "cada/util/clock.h"

using namespace cada::util;

TEST(Strings, Join) {
  EXPECT_EQ(join({}), "");
  EXPECT_EQ(join({"a"}), "a");
  EXPECT_EQ(join({"a", "b", "c"}), "a, b, c");
  EXPECT_EQ(join({"a", "b"}, " / "), "a / b");
  EXPECT_EQ(join_first({"a", "b", "c"}, 2), "a, b, ...");
  EXPECT_EQ(join_first({"a", "b"}, 2), "a, b");
  EXPECT_EQ(join_first({"a", "b"}, 0), ", ...");
  EXPECT_EQ(join_first({}, 3), "");
}

TEST(Strings, PrefixSuffixAndCase) {
  EXPECT_TRUE(starts_with("contrast_homonyms", "contrast_"));
  EXPECT_FALSE(starts_with("con", "contrast_"));
  EXPECT_TRUE(starts_with("x", ""));
  EXPECT_TRUE(ends_with("data.jsonl", ".jsonl"));
  EXPECT_FALSE(ends_with("l", ".jsonl"));
  EXPECT_EQ(to_lower("I'M Sorry, ÄB"), "i'm sorry, \xc3\x84" "b");  // ASCII only: UTF-8 bytes unchanged
  EXPECT_EQ(file_line("a.csv", 12), "a.csv:12");
}

TEST(Strings, TrimAndNames) {
  EXPECT_EQ(trim(" \t\r\n\f\vx y \n"), "x y");
  EXPECT_EQ(trim("   "), "");
  EXPECT_EQ(trim(""), "");
  EXPECT_TRUE(contains({"a", "b"}, "b"));
  EXPECT_FALSE(contains({"a", "b"}, "c"));
  EXPECT_TRUE(valid_name("rule_1.v-2"));
  EXPECT_FALSE(valid_name(""));
  EXPECT_FALSE(valid_name("a b"));
  EXPECT_FALSE(valid_name("a/b"));
  EXPECT_TRUE(is_blank(""));
  EXPECT_TRUE(is_blank(" \t\r\n"));
  EXPECT_FALSE(is_blank(" x "));
}

TEST(Clock, SecondsSinceIsNonNegativeAndGrows) {
  const auto t0 = Clock::now();
  const double a = seconds_since(t0);
  const double b = seconds_since(t0);
  EXPECT_GE(a, 0.0);
  EXPECT_GE(b, a);
}
