// Benchmark readers: native CSV layouts and the project's JSONL prompt records.
#include "cada/eval/benchmarks.h"

#include "cada/eval/public_data.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "cada/io/csv.h"
#include "cada/io/files.h"
#include "cada/io/jsonl.h"
#include "cada/util/error.h"
#include "cada/util/strings.h"

namespace cada::eval {

using nlohmann::json;

namespace {

// A CSV with the columns a format needs: throws naming the file, the format and what is missing.
struct Table {
  io::CsvTable t;
  std::string path;
  Table(const std::string& p, const std::string& format, const std::vector<std::string>& required) : path(p) {
    t = io::read_csv(p);
    std::vector<std::string> missing;
    for (const auto& c : required)
      if (!t.has_column(c)) missing.push_back(c);
    CADA_CHECK(missing.empty(), p, ": not a ", format, " file: column(s) ", util::join(missing), " missing (found: ",
               util::join(t.header), ")");
  }
  size_t rows() const { return t.rows.size(); }
  const std::string& get(size_t r, const std::string& col) const { return t.rows[r][t.column(col)]; }
  std::string opt(size_t r, const std::string& col) const { return t.has_column(col) ? get(r, col) : ""; }
  std::string where(size_t r) const { return util::file_line(path, t.row_lines[r]); }
  // Every column except `skip`, as meta.
  json meta(size_t r, const std::set<std::string>& skip) const {
    json m = json::object();
    for (size_t c = 0; c < t.header.size(); ++c)
      if (!skip.count(t.header[c])) m[t.header[c]] = t.rows[r][c];
    return m;
  }
  std::string nonempty(size_t r, const std::string& col) const {
    const std::string& v = get(r, col);
    CADA_CHECK(!util::is_blank(v), where(r), ": empty '", col, "' (every row needs the prompt text)");
    return v;
  }
};

}  // namespace

const std::vector<std::string>& benchmark_formats() {
  static const std::vector<std::string> f = [] {
    std::vector<std::string> v = {"auto", "strongreject", "xstest", "advbench", "harmbench", "jbb", "jsonl"};
    for (const auto& p : public_formats()) v.push_back(p);
    return v;
  }();
  return f;
}

std::string detect_format(const std::string& path) {
  if (std::string f = detect_public_format(path); !f.empty()) return f;
  if (util::ends_with(path, ".jsonl") || util::ends_with(path, ".json")) return "jsonl";
  auto t = io::read_csv(path);
  auto has = [&](std::initializer_list<const char*> cols) {
    for (const char* c : cols)
      if (!t.has_column(c)) return false;
    return true;
  };
  if (has({"forbidden_prompt"})) return "strongreject";
  if (has({"prompt", "type", "label"})) return "xstest";
  if (has({"Behavior", "BehaviorID"})) return "harmbench";
  if (has({"Goal", "Behavior"})) return "jbb";
  if (has({"goal", "target"})) return "advbench";
  CADA_FAIL(path, ": cannot tell the benchmark format from the columns (", util::join(t.header),
            "); set the dataset's 'format' to one of: ", util::join(benchmark_formats()));
}

std::vector<PromptRecord> read_strongreject(const std::string& path) {
  Table t(path, "StrongREJECT", {"category", "source", "forbidden_prompt"});
  std::vector<PromptRecord> out;
  for (size_t r = 0; r < t.rows(); ++r) {
    PromptRecord p;
    p.prompt = t.nonempty(r, "forbidden_prompt");
    p.id = std::to_string(t.t.row_lines[r]);
    p.label = "harmful";
    p.category = t.get(r, "category");
    p.source = t.get(r, "source");
    p.meta = t.meta(r, {"category", "source", "forbidden_prompt"});
    p.where = t.where(r);
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<PromptRecord> read_xstest(const std::string& path) {
  Table t(path, "XSTest", {"prompt", "type", "label"});
  std::vector<PromptRecord> out;
  std::set<std::string> ids;
  for (size_t r = 0; r < t.rows(); ++r) {
    PromptRecord p;
    p.prompt = t.nonempty(r, "prompt");
    const std::string& label = t.get(r, "label");
    CADA_CHECK(label == "safe" || label == "unsafe", t.where(r), ": XSTest label must be 'safe' or 'unsafe', got '",
               label, "'");
    p.label = label == "unsafe" ? "harmful" : "benign";
    p.category = t.get(r, "type");
    p.id = t.opt(r, "id").empty() ? std::to_string(t.t.row_lines[r]) : t.opt(r, "id");
    CADA_CHECK(ids.insert(p.id).second, t.where(r), ": XSTest id '", p.id, "' occurs twice");
    p.source = "xstest";
    p.meta = t.meta(r, {"prompt"});
    p.where = t.where(r);
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<PromptRecord> read_advbench(const std::string& path) {
  Table t(path, "AdvBench", {"goal", "target"});
  std::vector<PromptRecord> out;
  for (size_t r = 0; r < t.rows(); ++r) {
    PromptRecord p;
    p.prompt = t.nonempty(r, "goal");
    p.id = std::to_string(t.t.row_lines[r]);
    p.label = "harmful";
    p.source = "advbench";
    p.meta = t.meta(r, {"goal"});
    p.where = t.where(r);
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<PromptRecord> read_harmbench(const std::string& path) {
  Table t(path, "HarmBench", {"Behavior", "FunctionalCategory", "SemanticCategory", "BehaviorID"});
  std::vector<PromptRecord> out;
  std::set<std::string> ids;
  for (size_t r = 0; r < t.rows(); ++r) {
    PromptRecord p;
    const std::string behavior = t.nonempty(r, "Behavior");
    const std::string context = t.opt(r, "ContextString");
    // HarmBench's generation step: contextual behaviours put the context first.
    p.prompt = util::is_blank(context) ? behavior : context + "\n\n---\n\n" + behavior;
    p.id = t.get(r, "BehaviorID");
    CADA_CHECK(!p.id.empty(), t.where(r), ": empty 'BehaviorID'");
    CADA_CHECK(ids.insert(p.id).second, t.where(r), ": HarmBench BehaviorID '", p.id, "' occurs twice");
    p.label = "harmful";
    p.category = t.get(r, "SemanticCategory");
    p.source = "harmbench";
    p.meta = t.meta(r, {});
    p.meta["contextual"] = !util::is_blank(context);
    p.where = t.where(r);
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<PromptRecord> read_jbb(const std::string& path) {
  Table t(path, "JailbreakBench", {"Goal", "Target", "Behavior", "Category"});
  std::vector<PromptRecord> out;
  for (size_t r = 0; r < t.rows(); ++r) {
    PromptRecord p;
    p.prompt = t.nonempty(r, "Goal");
    p.id = t.get(r, "Behavior").empty() ? std::to_string(t.t.row_lines[r]) : t.get(r, "Behavior");
    p.label = "harmful";
    p.category = t.get(r, "Category");
    p.source = t.opt(r, "Source").empty() ? "jbb" : t.opt(r, "Source");
    p.meta = t.meta(r, {"Goal"});
    p.where = t.where(r);
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<PromptRecord> read_prompt_jsonl(const std::string& path) {
  std::vector<PromptRecord> out;
  io::JsonlReader reader(path);
  json rec;
  while (reader.next(rec)) {
    const std::string where = util::file_line(path, reader.line());
    CADA_CHECK(rec.is_object(), where, ": expected a JSON object");
    PromptRecord p;
    p.where = where;
    auto str = [&](const char* key) -> std::string {
      if (!rec.contains(key) || rec[key].is_null()) return "";
      if (rec[key].is_number_integer()) return std::to_string(rec[key].get<int64_t>());
      CADA_CHECK(rec[key].is_string(), where, ": '", key, "' must be a string");
      return rec[key].get<std::string>();
    };
    if (rec.contains("messages")) {
      const json& m = rec["messages"];
      CADA_CHECK(m.is_array() && !m.empty(), where, ": 'messages' must be a non-empty list");
      for (const auto& e : m) {
        CADA_CHECK(e.is_object() && e.contains("role") && e["role"].is_string() && e.contains("content") &&
                       e["content"].is_string(),
                   where, ": each message needs string fields 'role' and 'content'");
        p.messages.push_back({e["role"].get<std::string>(), e["content"].get<std::string>()});
      }
      CADA_CHECK(p.messages.back().role == "user", where,
                 ": the last message must be the user's request (role 'user'), got '", p.messages.back().role, "'");
      p.prompt = p.messages.back().content;
    } else {
      CADA_CHECK(rec.contains("prompt"), where, ": expected a 'prompt' string or a 'messages' list");
      p.prompt = str("prompt");
    }
    CADA_CHECK(!util::is_blank(p.prompt), where, ": empty prompt");
    p.label = str("label");
    if (p.label == "unsafe") p.label = "harmful";
    if (p.label == "safe") p.label = "benign";
    CADA_CHECK(p.label.empty() || p.label == "harmful" || p.label == "benign", where,
               ": 'label' must be harmful, benign (or XSTest's unsafe / safe), got '", p.label, "'");
    p.category = str("category");
    p.source = str("source");
    p.id = rec.contains("id") ? str("id") : std::to_string(reader.line());
    p.meta = json::object();
    for (auto it = rec.begin(); it != rec.end(); ++it)
      if (it.key() != "prompt" && it.key() != "messages" && it.key() != "label" && it.key() != "category" &&
          it.key() != "source" && it.key() != "id")
        p.meta[it.key()] = it.value();
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<PromptRecord> read_benchmark(const std::string& path, const std::string& format) {
  CADA_CHECK(io::file_exists(path), "benchmark file '", path, "' does not exist");
  const std::string f = format == "auto" || format.empty() ? detect_format(path) : format;
  if (f == "strongreject") return read_strongreject(path);
  if (f == "xstest") return read_xstest(path);
  if (f == "advbench") return read_advbench(path);
  if (f == "harmbench") return read_harmbench(path);
  if (f == "jbb") return read_jbb(path);
  if (f == "jsonl") return read_prompt_jsonl(path);
  const auto& pub = public_formats();
  if (std::find(pub.begin(), pub.end(), f) != pub.end()) return read_public(path, f);
  CADA_FAIL("unknown benchmark format '", f, "' for ", path, " (expected one of: ", util::join(benchmark_formats()), ")");
}

std::string record_field(const PromptRecord& r, const std::string& field) {
  if (field == "prompt") return r.prompt;
  if (field == "label") return r.label;
  if (field == "category") return r.category;
  if (field == "source") return r.source;
  if (field == "id") return r.id;
  if (r.meta.is_object() && r.meta.contains(field)) {
    const json& v = r.meta[field];
    if (v.is_string()) return v.get<std::string>();
    if (v.is_null()) return "";
    return v.dump();
  }
  return "";
}

std::vector<PromptRecord> load_dataset(const DatasetSpec& spec, const std::string& data_dir) {
  CADA_CHECK(!spec.path.empty(), "dataset '", spec.name, "': 'path' is required");
  const std::string path =
      !data_dir.empty() && !spec.path.empty() && spec.path[0] != '/' ? io::join_path(data_dir, spec.path) : spec.path;
  auto recs = read_benchmark(path, spec.format);
  if (!spec.label.empty())
    for (auto& r : recs) r.label = spec.label;
  if (!spec.where.is_null() && !spec.where.empty()) {
    CADA_CHECK(spec.where.is_object(), "dataset '", spec.name, "': 'where' must be an object (field -> value)");
    std::vector<PromptRecord> kept;
    for (auto& r : recs) {
      bool ok = true;
      for (auto it = spec.where.begin(); it != spec.where.end() && ok; ++it) {
        const std::string v = record_field(r, it.key());
        if (it.value().is_array()) {
          bool any = false;
          for (const auto& x : it.value()) any |= x.is_string() ? x.get<std::string>() == v : x.dump() == v;
          ok = any;
        } else {
          ok = it.value().is_string() ? it.value().get<std::string>() == v : it.value().dump() == v;
        }
      }
      if (ok) kept.push_back(std::move(r));
    }
    recs = std::move(kept);
  }
  if (spec.sample > 0 && static_cast<size_t>(spec.sample) < recs.size()) {
    // Seeded partial Fisher-Yates over the indices, then file order.
    std::mt19937_64 rng(spec.seed);
    std::vector<size_t> idx(recs.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    for (size_t i = 0; i < static_cast<size_t>(spec.sample); ++i) {
      const size_t j = i + static_cast<size_t>(rng() % (idx.size() - i));
      std::swap(idx[i], idx[j]);
    }
    idx.resize(static_cast<size_t>(spec.sample));
    std::sort(idx.begin(), idx.end());
    std::vector<PromptRecord> kept;
    for (size_t i : idx) kept.push_back(std::move(recs[i]));
    recs = std::move(kept);
  }
  if (spec.limit > 0 && static_cast<size_t>(spec.limit) < recs.size()) recs.resize(static_cast<size_t>(spec.limit));
  CADA_CHECK(!recs.empty(), "dataset '", spec.name, "' (", path, "): no records left after filtering");
  return recs;
}

}  // namespace cada::eval
