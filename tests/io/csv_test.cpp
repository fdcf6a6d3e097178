#include "cada/io/csv.h"

#include <gtest/gtest.h>

#include "io_test_util.h"

namespace cada::io {
namespace {

using testing::write_raw;

class CsvTest : public testing::TempDirTest {};

using Rows = std::vector<std::vector<std::string>>;

TEST(CsvParseTest, QuotingCases) {
  const std::string text =
      "id,prompt,type\n"
      "1,plain text,safe\n"
      "2,\"has, comma\",unsafe\n"
      "3,\"line one\nline two\",safe\n"
      "4,\"say \"\"hi\"\"\",x\n"
      "5,,\"\"\n"
      "6,a\"b,\"\"\"\"\n";
  CsvTable t = parse_csv(text, "mem.csv");
  EXPECT_EQ(t.header, (std::vector<std::string>{"id", "prompt", "type"}));
  EXPECT_EQ(t.rows, (Rows{{"1", "plain text", "safe"},
                          {"2", "has, comma", "unsafe"},
                          {"3", "line one\nline two", "safe"},
                          {"4", "say \"hi\"", "x"},
                          {"5", "", ""},
                          {"6", "a\"b", "\""}}));
  EXPECT_EQ(t.row_lines, (std::vector<size_t>{2, 3, 4, 6, 7, 8}));
  EXPECT_EQ(t.column("prompt"), 1u);
  EXPECT_TRUE(t.has_column("type"));
  EXPECT_FALSE(t.has_column("nope"));
  EXPECT_CADA_ERROR(t.column("nope"), "'nope'", "id, prompt, type");
}

TEST(CsvParseTest, CrlfBomBlankLinesAndNoTrailingNewline) {
  CsvTable t = parse_csv("\xEF\xBB\xBF" "a,b\r\n1,\"x\r\ny\"\r\n\r\n2,3", "mem.csv");
  EXPECT_EQ(t.header, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(t.rows, (Rows{{"1", "x\r\ny"}, {"2", "3"}}));
  EXPECT_EQ(t.row_lines, (std::vector<size_t>{2, 5}));
  EXPECT_EQ(parse_csv("a,b\n", "m").rows.size(), 0u);
  EXPECT_EQ(parse_csv("a,b\n1,\n", "m").rows, (Rows{{"1", ""}}));
}

TEST(CsvParseTest, ErrorsNameSourceAndLine) {
  EXPECT_CADA_ERROR(parse_csv("a,b\n1,2\n3\n", "f.csv"), "f.csv:3:", "1 fields", "header has 2");
  EXPECT_CADA_ERROR(parse_csv("a,b\n1,\"open\n\n", "f.csv"), "f.csv:2:", "unterminated quoted field");
  EXPECT_CADA_ERROR(parse_csv("a,b\n\"x\"y,2\n", "f.csv"), "f.csv:2:", "after a closing quote");
  EXPECT_CADA_ERROR(parse_csv("", "f.csv"), "f.csv:1:", "empty");
}

TEST_F(CsvTest, ReadsFilesAsRecords) {
  write_raw(path("x.csv"), "prompt,label\n\"Kill, a process?\",safe\nhello,unsafe\n");
  auto recs = read_csv_records(path("x.csv"));
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].at("prompt"), "Kill, a process?");
  EXPECT_EQ(recs[1].at("label"), "unsafe");

  write_raw(path("dup.csv"), "a,a\n1,2\n");
  EXPECT_CADA_ERROR(read_csv_records(path("dup.csv")), path("dup.csv") + ":1:", "repeats column 'a'");
  write_raw(path("bad.csv"), "a,b\n1,2,3\n");
  EXPECT_CADA_ERROR(read_csv(path("bad.csv")), path("bad.csv") + ":2:");
  EXPECT_CADA_ERROR(read_csv(path("missing.csv")), path("missing.csv"));
}

}  // namespace
}  // namespace cada::io

TEST(Csv, InvalidUtf8IsRefusedWithItsLine) {
  try {
    cada::io::parse_csv("prompt,category\nok,a\n\"caf\xE9\",x\n", "t.csv");
    FAIL() << "expected an error";
  } catch (const cada::Error& e) {
    EXPECT_NE(std::string(e.what()).find("t.csv:3: invalid UTF-8 (byte 0xE9)"), std::string::npos) << e.what();
  }
  // Well-formed multi-byte text (and a BOM) passes.
  auto t = cada::io::parse_csv("\xEF\xBB\xBFprompt\ncaf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\n", "t.csv");
  ASSERT_EQ(t.rows.size(), 1u);
  // Overlong forms and surrogates are not UTF-8.
  EXPECT_THROW(cada::io::parse_csv("a\n\xC0\xAF\n", "t.csv"), cada::Error);
  EXPECT_THROW(cada::io::parse_csv("a\n\xED\xA0\x80\n", "t.csv"), cada::Error);
}
