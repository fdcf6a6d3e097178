// Readers for safety benchmarks in their native files, all turned into PromptRecords.
//
// | format       | file                                   | columns / fields                                     |
// |--------------|----------------------------------------|------------------------------------------------------|
// | strongreject | strongreject_(small_)dataset.csv       | category, source, forbidden_prompt                   |
// | xstest       | xstest_prompts.csv                     | id, prompt, type, label (safe / unsafe), focus, note |
// | advbench     | harmful_behaviors.csv                  | goal, target                                         |
// | harmbench    | harmbench_behaviors_text_*.csv         | Behavior, FunctionalCategory, SemanticCategory, Tags, ContextString, BehaviorID |
// | jbb          | JailbreakBench behaviors CSV           | Goal, Target, Behavior, Category (Source, Index optional) |
// | jsonl        | the project's prompt records           | prompt | messages, label, category, id, source, ...  |
// | pku_saferlhf, beavertails, wildjailbreak, alpaca, dolly: public data sets (public_data.h)                    |
//
// Labels become "harmful" / "benign": XSTest's unsafe prompts (the contrast_* types) are
// harmful and its safe ones benign; StrongREJECT, AdvBench, HarmBench and JailbreakBench rows are
// harmful (a JailbreakBench benign-behaviours file gets "label": "benign" in its dataset entry).
// HarmBench's contextual behaviours (a non-empty ContextString) are asked as
// "<context>\n\n---\n\n<behavior>", as HarmBench's own generation step builds them.
// A malformed row (missing or empty prompt, unknown label) throws cada::Error naming file:line.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "cada/text/chat_template.h"

namespace cada::eval {

struct PromptRecord {
  std::string id;                        // stable within the dataset (BehaviorID, XSTest id, or "<line>")
  std::string prompt;                    // the request: the (last) user message
  std::vector<text::Message> messages;   // the whole conversation when the source gave one, else empty
  std::string label;                     // "harmful", "benign" or "" (unknown)
  std::string category;                  // hazard category / XSTest type / topic
  std::string source;                    // where the prompt came from (StrongREJECT / JBB "source")
  nlohmann::json meta = nlohmann::json::object();  // the other columns (target, type, focus, note, Tags, ...)
  std::string where;                     // "file:line" of the row
};

// Format names accepted by read_benchmark ("auto" detects from the header / extension).
const std::vector<std::string>& benchmark_formats();

// The format of a file: .jsonl / .json lines -> jsonl; CSVs by their header columns.
// Throws naming the file and its columns when none matches.
std::string detect_format(const std::string& path);

std::vector<PromptRecord> read_strongreject(const std::string& path);
std::vector<PromptRecord> read_xstest(const std::string& path);
std::vector<PromptRecord> read_advbench(const std::string& path);
std::vector<PromptRecord> read_harmbench(const std::string& path);
std::vector<PromptRecord> read_jbb(const std::string& path);
std::vector<PromptRecord> read_prompt_jsonl(const std::string& path);
// Dispatches on `format` (or detect_format for "auto").
std::vector<PromptRecord> read_benchmark(const std::string& path, const std::string& format = "auto");

// One entry of the eval config's "datasets" list.
struct DatasetSpec {
  std::string name;                      // report name; default: the file name without extension
  std::string path;                      // relative paths are resolved against the config's data_dir
  std::string format = "auto";
  std::string label;                     // overrides every record's label when set (harmful / benign)
  nlohmann::json where = nlohmann::json::object();  // field -> value or [values]: keep matching records
  int64_t limit = 0;                     // keep the first `limit` records after filtering (0 = all)
  int64_t sample = 0;                    // or a seeded random subset of this size (0 = off), order kept
  uint64_t seed = 0;                     // for `sample`
  nlohmann::json jailbreaks = nullptr;   // null = every configured jailbreak; or a list of their names
                                         // (a name also selects the draws "<name>.<k>" of `samples`)
  template <class V> void visit(V& v) {
    v("name", name, "name in the reports (default: the file name without extension)");
    v("path", path, "the benchmark file (relative to data_dir)");
    v("format", format,
      "auto | strongreject | xstest | advbench | harmbench | jbb | jsonl | pku_saferlhf | beavertails | "
      "wildjailbreak | alpaca | dolly",
      {"auto", "strongreject", "xstest", "advbench", "harmbench", "jbb", "jsonl", "pku_saferlhf", "beavertails",
       "wildjailbreak", "alpaca", "dolly"});
    v("label", label, "override every record's label: harmful | benign (empty = from the file)", {"", "harmful", "benign"});
    v("where", where, "keep records whose field equals the value (or one of a list), e.g. {\"split\": \"test\"}");
    v("limit", limit, "keep the first N records after filtering (0 = all)");
    v("sample", sample, "keep a seeded random subset of N records, in file order (0 = off)");
    v("seed", seed, "seed of `sample`");
    v("jailbreaks", jailbreaks, "names of the configured jailbreaks to apply here (null = all)");
  }
};

// The value of a record's field for `where` filters: prompt, label, category, source, id, then
// meta (the other columns / JSON fields, e.g. split, kind, FunctionalCategory, type). Absent: "".
std::string record_field(const PromptRecord& r, const std::string& field);

// Reads spec.path (joined to data_dir when relative and data_dir is set), applies label,
// where, sample and limit. Throws when nothing is left.
std::vector<PromptRecord> load_dataset(const DatasetSpec& spec, const std::string& data_dir = "");

}  // namespace cada::eval
