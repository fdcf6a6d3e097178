// Fuzz target: RFC 4180 CSV reading (include/cada/io/csv.h).
//
// Input: CSV text. parse_csv accepts it or throws cada::Error. An accepted table must be
// rectangular (every row has the header's field count) with increasing row_lines, column()
// must find every header name, and writing the table back with every field quoted and parsing
// that again must give the same table. One input in 4 also goes through read_csv_records on a
// scratch file (the path the benchmark readers use).
//
// Seeds: tests/fuzz/corpus/csv. Run: scripts/fuzz.sh, or build-fuzz/fuzz_csv tests/fuzz/corpus/csv
#include <exception>

#include "cada/io/csv.h"
#include "fuzz_common.h"

namespace {

std::string quoted(const std::string& field) {
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string write_csv(const cada::io::CsvTable& t) {
  auto record = [](const std::vector<std::string>& fields) {
    std::string line;
    for (size_t i = 0; i < fields.size(); ++i) line += (i ? "," : "") + quoted(fields[i]);
    return line + "\r\n";
  };
  std::string out = record(t.header);
  for (const auto& r : t.rows) out += record(r);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  cada::io::CsvTable t;
  try {
    t = cada::io::parse_csv(text, "fuzz.csv");
  } catch (const std::exception&) {
    return 0;
  }
  FUZZ_CHECK(t.rows.size() == t.row_lines.size());
  size_t prev_line = 0;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    FUZZ_CHECK(t.rows[r].size() == t.header.size());
    FUZZ_CHECK(t.row_lines[r] > prev_line);
    prev_line = t.row_lines[r];
  }
  for (const auto& h : t.header) {
    FUZZ_CHECK(t.has_column(h));
    FUZZ_CHECK(t.header[t.column(h)] == h);
  }
  // A header of one empty field (e.g. the text "\"\"") writes back as the line `""`, which
  // parses again as that same one empty field; blank lines never become rows.
  cada::io::CsvTable again;
  try {
    again = cada::io::parse_csv(write_csv(t), "rewritten.csv");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "a parsed table does not parse again after writing: %s\n", e.what());
    std::abort();
  }
  FUZZ_CHECK(again.header == t.header);
  FUZZ_CHECK(again.rows == t.rows);

  if (size % 4 == 0) {
    static const std::string path = cada::fuzz::scratch_dir() + "/in.csv";
    cada::fuzz::write_file(path, text);
    try {
      auto records = cada::io::read_csv_records(path);
      FUZZ_CHECK(records.size() == t.rows.size());
    } catch (const std::exception&) {
    }
  }
  return 0;
}
