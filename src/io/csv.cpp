#include "cada/io/csv.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "cada/io/files.h"
#include "cada/util/error.h"

namespace cada::io {

size_t CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return i;
  std::string cols;
  for (size_t i = 0; i < header.size(); ++i) cols += (i ? ", " : "") + header[i];
  CADA_FAIL("CSV has no column '", name, "' (columns: ", cols, ").");
}

bool CsvTable::has_column(const std::string& name) const {
  for (const auto& h : header)
    if (h == name) return true;
  return false;
}

namespace {

// Offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no overlong forms,
// no surrogates, at most U+10FFFF), or npos.
size_t first_invalid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = p[i];
    size_t len = 0;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) { ++i; continue; }
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return i;
    if (i + len > n) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return i;
    i += len;
  }
  return std::string::npos;
}

}  // namespace

CsvTable parse_csv(const std::string& text, const std::string& source, char delimiter) {
  // Invalid UTF-8 is refused as JSONL refuses it, not turned into U+FFFD later.
  if (const size_t bad = first_invalid_utf8(text); bad != std::string::npos) {
    const size_t line = 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + static_cast<long>(bad), '\n'));
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(text[bad]));
    CADA_FAIL(source, ":", line, ": invalid UTF-8 (byte ", hex, "); save the file as UTF-8.");
  }
  CsvTable table;
  size_t i = 0;
  const size_t n = text.size();
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;
  size_t line = 1;
  bool have_header = false;

  // Consumes one line terminator at i ("\r\n", "\n" or "\r"); true if found.
  auto eat_newline = [&]() {
    if (i < n && text[i] == '\r') {
      ++i;
      if (i < n && text[i] == '\n') ++i;
      ++line;
      return true;
    }
    if (i < n && text[i] == '\n') {
      ++i;
      ++line;
      return true;
    }
    return false;
  };

  while (i < n) {
    if (eat_newline()) continue;  // blank line between records
    const size_t record_line = line;
    std::vector<std::string> fields;
    while (true) {
      std::string field;
      if (i < n && text[i] == '"') {
        const size_t quote_line = line;
        ++i;
        while (true) {
          if (i >= n) {
            CADA_FAIL(source, ":", quote_line, ": unterminated quoted field (missing closing '\"').");
          }
          char c = text[i++];
          if (c == '"') {
            if (i < n && text[i] == '"') {
              field += '"';
              ++i;
            } else {
              break;
            }
          } else {
            if (c == '\n' || (c == '\r' && (i >= n || text[i] != '\n'))) ++line;
            field += c;
          }
        }
        if (i < n && text[i] != delimiter && text[i] != '\n' && text[i] != '\r') {
          CADA_FAIL(source, ":", line, ": unexpected character '", text[i],
                    "' after a closing quote (a quote inside a quoted field must be doubled).");
        }
      } else {
        while (i < n && text[i] != delimiter && text[i] != '\n' && text[i] != '\r') field += text[i++];
      }
      fields.push_back(std::move(field));
      if (i < n && text[i] == delimiter) {
        ++i;
        continue;
      }
      eat_newline();  // end of record (or of input)
      break;
    }
    if (!have_header) {
      table.header = std::move(fields);
      have_header = true;
      continue;
    }
    if (fields.size() != table.header.size()) {
      CADA_FAIL(source, ":", record_line, ": row has ", fields.size(), " fields but the header has ",
                table.header.size(), ".");
    }
    table.rows.push_back(std::move(fields));
    table.row_lines.push_back(record_line);
  }
  CADA_CHECK(have_header, source, ":1: the CSV is empty (no header row).");
  return table;
}

CsvTable read_csv(const std::string& path, char delimiter) { return parse_csv(read_file(path), path, delimiter); }

std::vector<std::map<std::string, std::string>> read_csv_records(const std::string& path) {
  CsvTable t = read_csv(path);
  std::set<std::string> seen;
  for (const auto& h : t.header) {
    CADA_CHECK(seen.insert(h).second, path, ":1: the header repeats column '", h, "'.");
  }
  std::vector<std::map<std::string, std::string>> out;
  out.reserve(t.rows.size());
  for (auto& row : t.rows) {
    std::map<std::string, std::string> rec;
    for (size_t c = 0; c < row.size(); ++c) rec.emplace(t.header[c], std::move(row[c]));
    out.push_back(std::move(rec));
  }
  return out;
}

}  // namespace cada::io
