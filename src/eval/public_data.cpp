// Readers for public data sets (PKU-SafeRLHF, BeaverTails, WildJailbreak, Alpaca, Dolly) and the
// in-the-wild jailbreak templates.
#include "cada/eval/public_data.h"

#include <algorithm>
#include <map>

#include "cada/io/csv.h"
#include "cada/io/files.h"
#include "cada/io/jsonl.h"
#include "cada/util/error.h"
#include "cada/util/strings.h"

namespace cada::eval {

using nlohmann::json;

namespace {

// One JSON row with its place: typed field access that fails with one sentence naming it.
struct Row {
  const json& j;
  std::string where;
  std::string what;  // "a PKU-SafeRLHF row", for the messages
  std::string str(const char* key, bool required = true) const {
    if (!j.contains(key) || j[key].is_null()) {
      CADA_CHECK(!required, where, ": ", what, " needs a string field '", key, "'");
      return "";
    }
    CADA_CHECK(j[key].is_string(), where, ": '", key, "' must be a string in ", what, ", got ", j[key].dump());
    return j[key].get<std::string>();
  }
  std::string text(const char* key) const {
    std::string s = str(key);
    CADA_CHECK(!util::is_blank(s), where, ": '", key, "' is empty in ", what, " (expected the request text)");
    return s;
  }
  bool boolean(const char* key) const {
    CADA_CHECK(j.contains(key) && j[key].is_boolean(), where, ": ", what, " needs a true / false field '", key,
               "'", j.contains(key) ? ", got " + j[key].dump() : std::string());
    return j[key].get<bool>();
  }
  // The keys set to true in a {category: bool} object (absent or null: none).
  std::vector<std::string> true_keys(const char* key) const {
    std::vector<std::string> out;
    if (!j.contains(key) || j[key].is_null()) return out;
    CADA_CHECK(j[key].is_object(), where, ": '", key, "' must be an object of category -> true / false in ", what);
    for (auto it = j[key].begin(); it != j[key].end(); ++it) {
      CADA_CHECK(it.value().is_boolean(), where, ": '", key, ".", it.key(), "' must be true or false in ", what);
      if (it.value().get<bool>()) out.push_back(it.key());
    }
    return out;
  }
};

// Records keyed by prompt text (PKU-SafeRLHF, BeaverTails: one row per response).
struct PromptMerge {
  std::vector<PromptRecord> out;
  std::map<std::string, size_t> index;
  // The record of `prompt`, created at its first row.
  PromptRecord& at(const std::string& prompt, size_t line, const std::string& where, const char* source) {
    auto [it, fresh] = index.emplace(prompt, out.size());
    if (fresh) {
      PromptRecord p;
      p.prompt = prompt;
      p.id = std::to_string(line);
      p.label = "benign";
      p.source = source;
      p.where = where;
      p.meta = {{"rows", 0}, {"categories", json::array()}};
      out.push_back(std::move(p));
    }
    PromptRecord& p = out[it->second];
    p.meta["rows"] = p.meta["rows"].get<int64_t>() + 1;
    return p;
  }
  static void unsafe(PromptRecord& p, const std::vector<std::string>& categories) {
    p.label = "harmful";
    for (const auto& c : categories) {
      auto& list = p.meta["categories"];
      if (std::find(list.begin(), list.end(), json(c)) == list.end()) list.push_back(c);
    }
    if (p.category.empty() && !categories.empty()) p.category = categories.front();
  }
};

template <class F>
void each_jsonl_row(const std::string& path, const std::string& what, F&& f) {
  io::JsonlReader reader(path);
  json rec;
  while (reader.next(rec)) {
    const std::string where = util::file_line(path, reader.line());
    CADA_CHECK(rec.is_object(), where, ": expected ", what, " as a JSON object, got ", rec.type_name());
    f(Row{rec, where, what}, reader.line());
  }
}

// The 1-based line where each top-level element of a JSON array starts (strings and nesting
// skipped), so that a malformed element of a pretty-printed list can be named by its line.
std::vector<size_t> array_element_lines(const std::string& text) {
  std::vector<size_t> lines;
  size_t line = 1;
  int depth = 0;
  bool in_string = false, want = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') ++line;
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    if (want && c != ']') lines.push_back(line);
    want = false;
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') want = (++depth == 1 && c == '[');
    else if (c == ']' || c == '}') --depth;
    else if (c == ',' && depth == 1) want = true;
  }
  return lines;
}

PromptRecord instruction_record(const Row& r, const char* extra_key, const char* answer_key, const char* source,
                                size_t line) {
  PromptRecord p;
  const std::string instruction = r.text("instruction");
  const std::string extra = r.str(extra_key, false);
  p.prompt = util::is_blank(extra) ? instruction : instruction + "\n\n" + extra;
  p.id = std::to_string(line);
  p.label = "benign";
  p.source = source;
  p.where = r.where;
  p.meta = {{extra_key, extra}, {answer_key, r.str(answer_key, false)}};
  return p;
}

}  // namespace

std::vector<PromptRecord> read_pku_saferlhf(const std::string& path) {
  PromptMerge m;
  each_jsonl_row(path, "a PKU-SafeRLHF row", [&](const Row& r, size_t line) {
    PromptRecord& p = m.at(r.text("prompt"), line, r.where, "pku_saferlhf");
    for (const char* k : {"0", "1"}) {
      const std::string safe = std::string("is_response_") + k + "_safe";
      if (!r.boolean(safe.c_str())) {
        const std::string cat = std::string("response_") + k + "_harm_category";
        PromptMerge::unsafe(p, r.true_keys(cat.c_str()));
      }
    }
  });
  return m.out;
}

std::vector<PromptRecord> read_beavertails(const std::string& path) {
  PromptMerge m;
  each_jsonl_row(path, "a BeaverTails row", [&](const Row& r, size_t line) {
    PromptRecord& p = m.at(r.text("prompt"), line, r.where, "beavertails");
    CADA_CHECK(r.j.contains("category") && r.j["category"].is_object(), r.where,
               ": a BeaverTails row needs 'category', an object of 14 category -> true / false");
    const auto cats = r.true_keys("category");
    if (!r.boolean("is_safe")) PromptMerge::unsafe(p, cats);
  });
  return m.out;
}

std::vector<PromptRecord> read_wildjailbreak(const std::string& path) {
  const io::CsvTable t = io::read_csv(path, '\t');
  CADA_CHECK(t.has_column("data_type") && (t.has_column("vanilla") || t.has_column("adversarial")), path,
             ": not a WildJailbreak TSV: expected the columns data_type and vanilla and / or adversarial");
  auto col = [&](size_t r, const char* c) -> std::string { return t.has_column(c) ? t.rows[r][t.column(c)] : ""; };
  std::vector<PromptRecord> out;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const std::string where = util::file_line(path, t.row_lines[r]);
    const std::string type = col(r, "data_type");
    const bool adversarial = type.rfind("adversarial_", 0) == 0, vanilla = type.rfind("vanilla_", 0) == 0;
    const bool harmful = util::ends_with(type, "_harmful"), benign = util::ends_with(type, "_benign");
    CADA_CHECK((adversarial || vanilla) && (harmful || benign), where, ": WildJailbreak data_type must be ",
               "vanilla_harmful, vanilla_benign, adversarial_harmful or adversarial_benign, got '", type, "'");
    PromptRecord p;
    const char* key = adversarial ? "adversarial" : "vanilla";
    p.prompt = col(r, key);
    CADA_CHECK(!util::is_blank(p.prompt), where, ": a ", type, " row needs its '", key, "' text, and it is empty");
    p.id = std::to_string(t.row_lines[r]);
    p.label = harmful ? "harmful" : "benign";
    p.category = type;
    p.source = "wildjailbreak";
    p.where = where;
    for (size_t c = 0; c < t.header.size(); ++c)
      if (t.header[c] != key && t.header[c] != "data_type") p.meta[t.header[c]] = t.rows[r][c];
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<PromptRecord> read_alpaca(const std::string& path) {
  const std::string text = io::read_file(path);
  json list;
  try {
    list = json::parse(text);
  } catch (const json::exception&) {
    CADA_FAIL(path, ": invalid JSON (an Alpaca file is one JSON list of {instruction, input, output} objects)");
  }
  CADA_CHECK(list.is_array(), path, ":1: expected a JSON list of {instruction, input, output} objects");
  const auto lines = array_element_lines(text);
  std::vector<PromptRecord> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const size_t line = i < lines.size() ? lines[i] : 1;
    const std::string where = util::file_line(path, line);
    CADA_CHECK(list[i].is_object(), where, ": expected an Alpaca {instruction, input, output} object, got ",
               list[i].type_name());
    out.push_back(instruction_record(Row{list[i], where, "an Alpaca row"}, "input", "output", "alpaca", line));
  }
  return out;
}

std::vector<PromptRecord> read_dolly(const std::string& path) {
  std::vector<PromptRecord> out;
  each_jsonl_row(path, "a Dolly row", [&](const Row& r, size_t line) {
    PromptRecord p = instruction_record(r, "context", "response", "dolly", line);
    p.category = r.str("category", false);
    out.push_back(std::move(p));
  });
  return out;
}

const std::vector<std::string>& public_formats() {
  static const std::vector<std::string> f = {"pku_saferlhf", "beavertails", "wildjailbreak", "alpaca", "dolly"};
  return f;
}

std::vector<PromptRecord> read_public(const std::string& path, const std::string& format) {
  if (format == "pku_saferlhf") return read_pku_saferlhf(path);
  if (format == "beavertails") return read_beavertails(path);
  if (format == "wildjailbreak") return read_wildjailbreak(path);
  if (format == "alpaca") return read_alpaca(path);
  if (format == "dolly") return read_dolly(path);
  CADA_FAIL("unknown public data format '", format, "' for ", path);
}

std::string detect_public_format(const std::string& path) {
  if (util::ends_with(path, ".tsv")) return "wildjailbreak";
  if (!util::ends_with(path, ".json") && !util::ends_with(path, ".jsonl")) return "";
  const std::string text = io::read_file(path);
  const size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string::npos) return "";
  json first;
  if (text[start] == '[') {
    const json list = json::parse(text, nullptr, false);
    if (list.is_discarded() || !list.is_array() || list.empty()) return "";
    first = list[0];
    return first.is_object() && first.contains("instruction") && first.contains("output") ? "alpaca" : "";
  }
  first = json::parse(text.substr(start, text.find('\n', start) - start), nullptr, false);
  if (first.is_discarded() || !first.is_object()) return "";
  if (first.contains("is_response_0_safe")) return "pku_saferlhf";
  if (first.contains("is_safe") && first.contains("response")) return "beavertails";
  if (first.contains("instruction") && first.contains("context")) return "dolly";
  return "";
}

std::vector<JailbreakTemplate> read_jailbreak_templates(const std::string& path) {
  const io::CsvTable t = io::read_csv(path);
  CADA_CHECK(t.has_column("prompt"), path, ": not a jailbreak prompts CSV: expected a 'prompt' column");
  std::vector<JailbreakTemplate> out;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const std::string where = util::file_line(path, t.row_lines[r]);
    const std::string& text = t.rows[r][t.column("prompt")];
    CADA_CHECK(!util::is_blank(text), where, ": empty 'prompt' (every row of a jailbreak prompts CSV needs its text)");
    if (t.has_column("jailbreak") && t.rows[r][t.column("jailbreak")] != "True") continue;
    if (text.find("[INSERT PROMPT HERE]") == std::string::npos && text.find("{forbidden_prompt}") == std::string::npos)
      continue;
    out.push_back({text, where});
  }
  CADA_CHECK(!out.empty(), path, ": no row is a jailbreak template (a 'prompt' with a [INSERT PROMPT HERE] slot)");
  return out;
}

}  // namespace cada::eval
