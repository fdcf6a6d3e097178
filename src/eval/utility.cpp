#include "cada/eval/utility.h"

#include <regex>

#include "cada/io/csv.h"
#include "cada/io/files.h"
#include "cada/io/jsonl.h"
#include "cada/util/error.h"

namespace cada::eval {

namespace {

const std::regex& number_re() {
  static const std::regex re(R"([-+]?[0-9][0-9,]*(?:\.[0-9]+)?)");
  return re;
}

std::optional<std::string> first_number(const std::string& s) {
  std::smatch m;
  if (!std::regex_search(s, m, number_re())) return std::nullopt;
  return normalize_number(m.str());
}

std::optional<std::string> last_number(const std::string& s) {
  std::optional<std::string> last;
  for (auto it = std::sregex_iterator(s.begin(), s.end(), number_re()); it != std::sregex_iterator(); ++it)
    last = normalize_number(it->str());
  return last;
}

// The text inside the last \boxed{...} (braces balanced); nullopt when there is none.
std::optional<std::string> last_boxed(const std::string& s) {
  const size_t at = s.rfind("\\boxed{");
  if (at == std::string::npos) return std::nullopt;
  size_t i = at + 7;
  int depth = 1;
  const size_t begin = i;
  for (; i < s.size() && depth > 0; ++i) {
    if (s[i] == '{') ++depth;
    if (s[i] == '}') --depth;
  }
  return s.substr(begin, depth == 0 ? i - 1 - begin : s.size() - begin);
}

}  // namespace

std::vector<MmluItem> read_mmlu_csv(const std::string& path, const std::string& subject) {
  // The test CSVs have no header: parse under a synthetic one (header line 0 shifts rows by 1).
  const io::CsvTable t = io::parse_csv("question,A,B,C,D,answer\n" + io::read_file(path), path);
  std::vector<MmluItem> out;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    MmluItem it;
    it.subject = subject;
    it.question = row[0];
    for (int k = 0; k < 4; ++k) it.choices[k] = row[1 + k];
    const std::string& a = row[5];
    CADA_CHECK(a.size() == 1 && a[0] >= 'A' && a[0] <= 'D', path, ":", t.row_lines[r] - 1,
               ": expected the answer letter A, B, C or D in the sixth field, got \"", a, "\"");
    it.answer = a[0] - 'A';
    out.push_back(std::move(it));
  }
  return out;
}

std::string mmlu_prompt(const MmluItem& item) {
  std::string p = "The following are multiple choice questions (with answers) about " + item.subject + ".\n\n" +
                  item.question;
  for (int k = 0; k < 4; ++k) p += std::string("\n") + static_cast<char>('A' + k) + ". " + item.choices[k];
  return p + "\nAnswer:";
}

std::vector<std::string> mmlu_continuations() { return {" A", " B", " C", " D"}; }

int mmlu_pick(const std::vector<double>& logprobs) {
  CADA_CHECK(logprobs.size() == 4, "MMLU scoring: expected 4 log-probabilities, got ", logprobs.size());
  int best = 0;
  for (int k = 1; k < 4; ++k)
    if (logprobs[k] > logprobs[best]) best = k;
  return best;
}

std::vector<Gsm8kItem> read_gsm8k_jsonl(const std::string& path) {
  std::vector<Gsm8kItem> out;
  const auto recs = io::read_jsonl(path);
  for (size_t r = 0; r < recs.size(); ++r) {
    const auto& j = recs[r];
    const std::string where = path + ": record " + std::to_string(r + 1);
    CADA_CHECK(j.is_object() && j.contains("question") && j["question"].is_string() && j.contains("answer") &&
                   j["answer"].is_string(),
               where, ": expected string fields \"question\" and \"answer\"");
    const std::string a = j["answer"].get<std::string>();
    const size_t at = a.rfind("####");
    CADA_CHECK(at != std::string::npos, where, ": expected the answer to end in \"#### <number>\"");
    auto n = first_number(a.substr(at + 4));
    CADA_CHECK(n.has_value(), where, ": expected a number after \"####\", got \"", a.substr(at + 4), "\"");
    out.push_back({j["question"].get<std::string>(), *n});
  }
  return out;
}

std::optional<std::string> normalize_number(const std::string& s) {
  std::string t;
  for (char c : s)
    if (c != ',') t += c;
  if (!t.empty() && t[0] == '+') t.erase(0, 1);
  if (!std::regex_match(t, std::regex(R"(-?[0-9]+(?:\.[0-9]+)?)"))) return std::nullopt;
  if (t.find('.') != std::string::npos) {
    while (t.back() == '0') t.pop_back();
    if (t.back() == '.') t.pop_back();
  }
  const bool neg = t[0] == '-';
  std::string digits = neg ? t.substr(1) : t;
  size_t z = 0;
  while (z + 1 < digits.size() && digits[z] == '0' && digits[z + 1] != '.') ++z;
  digits = digits.substr(z);
  if (digits == "0") return std::string("0");
  return (neg ? "-" : "") + digits;
}

std::optional<std::string> extract_number(const std::string& text) {
  const size_t at = text.rfind("####");
  if (at != std::string::npos) {
    if (auto n = first_number(text.substr(at + 4))) return n;
  }
  if (auto boxed = last_boxed(text)) {
    if (auto n = first_number(*boxed)) return n;
  }
  return last_number(text);
}

bool gsm8k_correct(const std::string& completion, const std::string& reference) {
  const auto ref = normalize_number(reference);
  const auto got = extract_number(completion);
  return ref && got && *ref == *got;
}

}  // namespace cada::eval
