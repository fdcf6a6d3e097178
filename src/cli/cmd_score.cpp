// cada score: every configured reward on every response of a generation file.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>

#include "cada/io/files.h"
#include "cada/io/jsonl.h"
#include "cada/model/loader.h"
#include "cada/reward/reward.h"
#include "cada/util/log.h"
#include "cada/util/progress.h"
#include "command.h"

// A named namespace per command file: the files may be compiled as one (unity build).
namespace {
namespace cmd_score {

using nlohmann::json;

struct Opts {
  std::string rewards, input, out, summary;
  std::string device = "cpu";
  std::string dtype = "auto";
  int64_t batch_size = 8;
  int64_t chunk = 256;
  int threads = 0;
};

// Where each sample's score goes: record index, and completion index (-1 for a flat record).
struct Slot {
  size_t record;
  int64_t completion;
};

std::vector<cada::text::Message> prompt_of(const json& rec, const std::string& where) {
  std::vector<cada::text::Message> msgs;
  if (rec.contains("messages")) {
    const json& m = rec["messages"];
    CADA_CHECK(m.is_array() && !m.empty(), where, ": 'messages' must be a non-empty list");
    for (const auto& e : m) {
      CADA_CHECK(e.is_object() && e.contains("role") && e["role"].is_string() && e.contains("content") &&
                     e["content"].is_string(),
                 where, ": each message needs string fields 'role' and 'content'");
      msgs.push_back({e["role"].get<std::string>(), e["content"].get<std::string>()});
    }
  } else if (rec.contains("prompt")) {
    CADA_CHECK(rec["prompt"].is_string(), where, ": 'prompt' must be a string");
    msgs.push_back({"user", rec["prompt"].get<std::string>()});
  }
  return msgs;
}

std::string string_field(const json& rec, const char* key, const std::string& where) {
  if (!rec.contains(key) || rec[key].is_null()) return "";
  CADA_CHECK(rec[key].is_string(), where, ": '", key, "' must be a string");
  return rec[key].get<std::string>();
}

json to_json(const std::optional<double>& v) {
  if (!v || !std::isfinite(*v)) return nullptr;
  return *v;
}

// The records of the input file, one reward sample per response, and each sample's slot.
struct ScoreInput {
  std::vector<json> records;
  std::vector<std::string> wheres;   // file:line of each record
  std::vector<cada::reward::Sample> samples;
  std::vector<Slot> slots;
};

ScoreInput read_score_input(const std::string& path) {
  using namespace cada;
  ScoreInput in;
  int64_t unknown_labels = 0;
  io::JsonlReader reader(path);
  json rec;
  while (reader.next(rec)) {
    const std::string where = path + ":" + std::to_string(reader.line());
    CADA_CHECK(rec.is_object(), where, ": expected a JSON object");
    reward::Sample base;
    base.prompt = prompt_of(rec, where);
    base.label = string_field(rec, "label", where);
    base.category = string_field(rec, "category", where);
    if (!base.label.empty() && base.label != "harmful" && base.label != "benign") ++unknown_labels;
    const size_t ri = in.records.size();
    if (rec.contains("completions")) {
      const json& comps = rec["completions"];
      CADA_CHECK(comps.is_array(), where, ": 'completions' must be a list");
      for (size_t j = 0; j < comps.size(); ++j) {
        const json& c = comps[j];
        std::string text;
        if (c.is_string()) text = c.get<std::string>();
        else {
          CADA_CHECK(c.is_object() && c.contains("text") && c["text"].is_string(), where, ": completions[", j,
                     "] must be a string or an object with a 'text' string");
          text = c["text"].get<std::string>();
        }
        reward::Sample s = base;
        s.response = std::move(text);
        in.samples.push_back(std::move(s));
        in.slots.push_back({ri, static_cast<int64_t>(j)});
      }
    } else {
      const char* key = rec.contains("response") ? "response" : "completion";
      CADA_CHECK(rec.contains(key) && rec[key].is_string(), where,
                 ": expected 'completions' (cada generate output) or a 'response' string");
      reward::Sample s = base;
      s.response = rec[key].get<std::string>();
      in.samples.push_back(std::move(s));
      in.slots.push_back({ri, -1});
    }
    in.records.push_back(std::move(rec));
    in.wheres.push_back(where);
  }
  CADA_CHECK(!in.records.empty(), path, ": no records");
  if (unknown_labels > 0)
    CADA_WARN(unknown_labels, " record(s) have a 'label' other than harmful / benign; composite terms with "
              "'when' harmful / benign / unlabeled do not apply to them");
  return in;
}

// Every reward's value for every sample, chunk by chunk with progress.
std::vector<cada::reward::Values> score_all(cada::reward::RewardSet& set, const std::vector<cada::reward::Sample>& samples,
                                            int64_t chunk) {
  using namespace cada;
  const size_t R = set.size();
  std::vector<reward::Values> values(R, reward::Values(samples.size()));
  Progress bar("score", static_cast<int64_t>(samples.size()), "responses");
  for (size_t start = 0; start < samples.size(); start += static_cast<size_t>(chunk)) {
    const size_t end = std::min(samples.size(), start + static_cast<size_t>(chunk));
    std::vector<reward::Sample> part(samples.begin() + start, samples.begin() + end);
    auto scored = set.score(part);
    for (size_t r = 0; r < R; ++r)
      std::copy(scored[r].second.begin(), scored[r].second.end(), values[r].begin() + start);
    bar.advance(static_cast<int64_t>(end - start));
  }
  bar.finish();
  return values;
}

// The records with a "scores" object on each response, written atomically to `path`.
void write_scores(ScoreInput& in, const cada::reward::RewardSet& set, const std::vector<cada::reward::Values>& values,
                  const std::string& path) {
  for (size_t i = 0; i < in.samples.size(); ++i) {
    json scores = json::object();
    for (size_t r = 0; r < set.size(); ++r) scores[set.rewards()[r]->name()] = to_json(values[r][i]);
    json& rec = in.records[in.slots[i].record];
    if (in.slots[i].completion < 0) {
      rec["scores"] = scores;
    } else {
      json& c = rec["completions"][in.slots[i].completion];
      if (c.is_string()) c = json{{"text", c.get<std::string>()}};
      c["scores"] = scores;
    }
  }
  std::string out;
  for (const auto& rec : in.records) out += rec.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  cada::io::atomic_write_file(path, out);
}

// Prints the summary table (mean / min / max over the non-null values, nulls, judge parse
// failures) and returns it as JSON.
json print_summary(const cada::reward::RewardSet& set, const std::vector<cada::reward::Values>& values) {
  json summary = json::object();
  std::printf("%-24s %-10s %12s %12s %12s %8s %8s %9s\n", "reward", "type", "mean", "min", "max", "scored", "null",
              "failures");
  for (size_t r = 0; r < set.size(); ++r) {
    const auto& rw = set.rewards()[r];
    double sum = 0, lo = std::numeric_limits<double>::infinity(), hi = -lo;
    int64_t n = 0, nulls = 0;
    for (const auto& v : values[r]) {
      if (!v || !std::isfinite(*v)) {
        ++nulls;
        continue;
      }
      sum += *v;
      lo = std::min(lo, *v);
      hi = std::max(hi, *v);
      ++n;
    }
    const double mean = n ? sum / n : std::nan("");
    if (n) std::printf("%-24s %-10s %12.6f %12.6f %12.6f %8lld %8lld %9lld\n", rw->name().c_str(), rw->type().c_str(),
                       mean, lo, hi, (long long)n, (long long)nulls, (long long)rw->failures());
    else std::printf("%-24s %-10s %12s %12s %12s %8lld %8lld %9lld\n", rw->name().c_str(), rw->type().c_str(), "-",
                     "-", "-", (long long)n, (long long)nulls, (long long)rw->failures());
    summary[rw->name()] = {{"type", rw->type()},
                           {"mean", n ? json(mean) : json(nullptr)},
                           {"min", n ? json(lo) : json(nullptr)},
                           {"max", n ? json(hi) : json(nullptr)},
                           {"scored", n},
                           {"null", nulls},
                           {"parse_failures", rw->failures()}};
  }
  std::fflush(stdout);
  return summary;
}

int run(const Opts& o) {
  using namespace cada;
  model::configure_threads(o.threads);
  CADA_CHECK(o.chunk > 0, "--chunk must be positive, got ", o.chunk);
  ScoreInput in = read_score_input(o.input);  // read and checked before any model is loaded
  auto set = reward::RewardSet::load(o.rewards, {o.device, o.dtype, o.batch_size});
  for (const auto& r : set.rewards()) {
    if (!r->needs_prompt()) continue;
    for (size_t i = 0; i < in.samples.size(); ++i)
      CADA_CHECK(!in.samples[i].prompt.empty(), in.wheres[in.slots[i].record], ": reward '", r->name(), "' (",
                 r->type(), ") reads the prompt, but the record has no 'prompt' or 'messages' field");
  }
  const auto values = score_all(set, in.samples, o.chunk);
  write_scores(in, set, values, o.out);
  const json summary = print_summary(set, values);
  if (!o.summary.empty()) io::atomic_write_file(o.summary, summary.dump(2) + "\n");
  CADA_INFO("scored ", in.samples.size(), " responses of ", in.records.size(), " records with ", set.size(),
            " reward(s); wrote ", o.out);
  return 0;
}

CADA_REGISTER_COMMAND(cada::cli::CommandSpec{
    "score", "Score generations with the configured rewards (reward models, refusal, format, length, judges)",
    [](CLI::App& sub) -> cada::cli::Runner {
      auto o = std::make_shared<Opts>();
      sub.add_option("--rewards", o->rewards, "reward config JSON: {\"rewards\": [{name, type, ...}]} (docs/rewards.md)")
          ->required();
      sub.add_option("--input", o->input,
                     "JSONL: cada generate output (completions: [{text}]) or flat records with a 'response'; "
                     "prompt | messages, label, category are read from each record")
          ->required();
      sub.add_option("--out", o->out, "JSONL output: the input records with scores: {name: value|null} per response")
          ->required();
      sub.add_option("--summary", o->summary, "also write the summary table as JSON to this file");
      sub.add_option("--device", o->device, "cpu, cuda or cuda:N for the reward models and judges");
      sub.add_option("--dtype", o->dtype, "auto (checkpoint dtype on GPU, float32 on CPU), float32, bfloat16, float16");
      sub.add_option("--batch-size", o->batch_size, "sequences per forward pass (a reward's own batch_size wins)");
      sub.add_option("--chunk", o->chunk, "responses handed to the rewards at a time (progress granularity)");
      sub.add_option("--threads", o->threads, "intra-op CPU threads (0 = all available cores)");
      return [o]() { return run(*o); };
    }});

}  // namespace cmd_score
}  // namespace
