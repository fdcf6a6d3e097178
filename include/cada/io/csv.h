// RFC 4180 CSV reading (benchmark prompt files such as XSTest / HarmBench).
//
// Fields are separated by ',' (or the given delimiter: '\t' reads TSV files written with the same
// quoting, as pandas writes them) and records by "\n" or "\r\n" (a lone '\r' also
// ends a record). A field starting with '"' is quoted: it may hold commas,
// line breaks and doubled quotes ("" -> "). A '"' inside an unquoted field is
// kept literally. A leading UTF-8 BOM is dropped, blank lines between records
// are skipped, and the first record is the header.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace cada::io {

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // each has header.size() fields
  std::vector<size_t> row_lines;               // 1-based line where each row starts

  // Index of column `name`; throws cada::Error when there is no such column.
  size_t column(const std::string& name) const;
  // True when the header has a column `name`.
  bool has_column(const std::string& name) const;
};

// Parses CSV text. `source` (usually the path) prefixes error messages as
// "source:line: problem". Throws cada::Error for an unterminated quoted field,
// characters after a closing quote, an empty input (no header), or a row whose
// field count differs from the header's.
CsvTable parse_csv(const std::string& text, const std::string& source, char delimiter = ',');

// Reads and parses a CSV file (errors name "path:line").
CsvTable read_csv(const std::string& path, char delimiter = ',');

// Reads a CSV file as one map (column -> value) per row. Throws cada::Error
// when the header repeats a column name.
std::vector<std::map<std::string, std::string>> read_csv_records(const std::string& path);

}  // namespace cada::io
