// generate-chains: config, prompts, the resumable generate -> score -> filter loop, chain records.
#include "cada/safety/chains.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>

#include "cada/dist/comm.h"
#include "cada/io/files.h"
#include "cada/io/jsonl.h"
#include "cada/model/config.h"
#include "cada/model/loader.h"
#include "cada/reward/reward.h"
#include "cada/rollout/generator.h"
#include "cada/rollout/sampling.h"
#include "cada/rollout/sharded.h"
#include "cada/text/reasoning.h"
#include "cada/text/records.h"
#include "cada/util/config.h"
#include "cada/util/log.h"
#include "cada/util/progress.h"
#include "cada/util/strings.h"

namespace cada::safety {

using nlohmann::json;

namespace {

// Test hooks. CADA_TEST_KILL_CHAINS=<point>:<n> sends SIGKILL to this process at <point> of the
// n-th prompt it writes: "samples" (its sample lines written, its progress line not), "partial"
// (half of its first sample line written), "progress" (its progress line written).
// CADA_TEST_CHAINS_DELAY_MS=<ms> sleeps after each progress line (so a test can kill a run from
// outside while it is in the middle).
struct KillHook {
  std::string point;
  int64_t n = -1;
  int64_t delay_ms = 0;
  KillHook() {
    if (const char* d = std::getenv("CADA_TEST_CHAINS_DELAY_MS")) delay_ms = std::atoll(d);
    const char* e = std::getenv("CADA_TEST_KILL_CHAINS");
    if (!e) return;
    std::string s = e;
    auto c = s.find(':');
    if (c == std::string::npos) return;
    point = s.substr(0, c);
    n = std::atoll(s.c_str() + c + 1);
  }
  bool at(const char* p, int64_t written) const { return n == written && point == p; }
};

}  // namespace

// ---------------------------------------------------------------- config

ChainsConfig parse_chains_config(const json& j, const std::string& source) {
  auto cfg = config::parse<ChainsConfig>(j, source);
  std::vector<std::string> problems;
  if (cfg.model.empty()) problems.push_back("'model' is required (a Hugging Face model folder)");
  if (cfg.output_dir.empty()) problems.push_back("'output_dir' must not be empty");
  if (cfg.rewards.is_null()) problems.push_back("'rewards' is required (an object, or the path of a reward config)");
  else if (!cfg.rewards.is_object() && !cfg.rewards.is_string())
    problems.push_back("'rewards' must be an object or the path of a reward config, got " + cfg.rewards.dump());
  if (cfg.setting == "none") {
    if (!cfg.spec.empty()) problems.push_back("'spec' must be empty for setting 'none' (no specification is shown)");
  } else if (cfg.spec.empty()) {
    problems.push_back("'spec' is required for setting '" + cfg.setting + "' (e.g. data/specs/" + cfg.setting + ".json)");
  } else {
    try {
      Spec s = load_spec(cfg.spec);
      if (s.kind != cfg.setting)
        problems.push_back("'spec' " + cfg.spec + " is a '" + s.kind + "' specification; setting '" + cfg.setting +
                           "' needs kind '" + cfg.setting + "'");
    } catch (const Error& e) {
      problems.push_back(std::string("'spec': ") + e.what());
    }
  }
  check_case_options(cfg.cases, "cases.", problems);
  check_filter_options(cfg.filter, "filter.", problems);
  if (cfg.sampling.num_samples < 1) problems.push_back("'sampling.num_samples' must be >= 1");
  if (cfg.sampling.max_new_tokens < 1) problems.push_back("'sampling.max_new_tokens' must be >= 1");
  for (auto& p : cfg.sampling.problems("sampling")) problems.push_back(std::move(p));
  if (cfg.data.limit < 0) problems.push_back("'data.limit' must be >= 0 (0 = all)");
  if (cfg.data.prompts.empty()) problems.push_back("'data.prompts' is required (a JSONL file of prompt records)");
  if (cfg.runtime.prompts_per_batch < 1) problems.push_back("'runtime.prompts_per_batch' must be >= 1");
  for (auto& p : cfg.runtime.problems("runtime")) problems.push_back(std::move(p));
  if (cfg.runtime.reward_batch_size < 1) problems.push_back("'runtime.reward_batch_size' must be >= 1");
  if (!problems.empty()) {
    std::string msg = source + ": " + std::to_string(problems.size()) + " problem(s) in the config:";
    for (const auto& p : problems) msg += "\n  - " + p;
    throw Error(msg);
  }
  return cfg;
}

ChainsConfig load_chains_config(const std::string& path, const std::vector<std::string>& overrides) {
  auto j = config::load_file(path);
  config::apply_overrides(j, overrides);
  return parse_chains_config(j, path);
}

// ---------------------------------------------------------------- prompts

std::vector<ChainPrompt> load_chain_prompts(const ChainsDataOptions& d) {
  std::vector<ChainPrompt> out;
  std::set<std::string> ids;
  io::JsonlReader reader(d.prompts);
  json rec;
  while (reader.next(rec)) {
    const std::string where = d.prompts + ":" + std::to_string(reader.line());
    CADA_CHECK(rec.is_object(), where, ": a prompt record must be a JSON object");
    auto field = [&](const char* k) -> std::string {
      if (!rec.contains(k) || rec[k].is_null()) return "";
      CADA_CHECK(rec[k].is_string(), where, ": '", k, "' must be a string");
      return rec[k].get<std::string>();
    };
    if (!d.split.empty() && field("split") != d.split) continue;
    if (!d.labels.empty() && !util::contains(d.labels, field("label"))) continue;
    if (!d.kinds.empty() && !util::contains(d.kinds, field("kind"))) continue;
    if (!d.categories.empty() && !util::contains(d.categories, field("category"))) continue;
    ChainPrompt p;
    p.where = where;
    p.id = field("id");
    if (p.id.empty()) p.id = "line-" + std::to_string(reader.line());
    CADA_CHECK(ids.insert(p.id).second, where, ": the id '", p.id, "' occurs twice (chains are keyed by prompt id)");
    p.label = field("label");
    p.category = field("category");
    p.messages = record_messages(rec, where);
    p.record = rec;
    out.push_back(std::move(p));
  }
  if (d.order == "shuffle") {
    std::vector<std::pair<uint64_t, size_t>> key;
    for (size_t i = 0; i < out.size(); ++i) key.push_back({derive_seed(d.seed, out[i].id), i});
    std::sort(key.begin(), key.end());
    std::vector<ChainPrompt> sorted;
    for (const auto& [h, i] : key) sorted.push_back(std::move(out[i]));
    out = std::move(sorted);
  }
  if (d.limit > 0 && out.size() > static_cast<size_t>(d.limit)) out.resize(static_cast<size_t>(d.limit));
  return out;
}

static std::shared_ptr<const Spec> spec_of(const ChainsConfig& cfg) {
  if (cfg.setting == "none") return nullptr;
  return std::make_shared<const Spec>(load_spec(cfg.spec));
}

std::vector<BuiltPrompt> preview_prompts(const ChainsConfig& cfg, int64_t n) {
  PromptBuilder builder({cfg.setting, cfg.prompt, cfg.cases}, spec_of(cfg));
  auto prompts = load_chain_prompts(cfg.data);
  std::vector<BuiltPrompt> out;
  for (size_t i = 0; i < prompts.size() && static_cast<int64_t>(i) < n; ++i)
    out.push_back(builder.build(prompts[i].messages, prompts[i].category, prompts[i].id));
  return out;
}

// ---------------------------------------------------------------- fingerprint

std::string model_fingerprint(const std::string& dir) {
  uint64_t h = 1469598103934665603ull;
  auto feed = [&](const std::string& bytes) { h = fnv1a64(bytes, h); };
  const std::string cfg = io::join_path(dir, "config.json");
  CADA_CHECK(io::file_exists(cfg), dir, ": no config.json in the model folder");
  feed(io::read_file(cfg));
  const std::string index = io::join_path(dir, "model.safetensors.index.json");
  if (io::file_exists(index)) feed(io::read_file(index));
  for (const auto& name : io::list_dir(dir)) {
    if (name.size() < 12 || name.compare(name.size() - 12, 12, ".safetensors") != 0) continue;
    const std::string p = io::join_path(dir, name);
    struct stat st {};
    CADA_CHECK(::stat(p.c_str(), &st) == 0, p, ": cannot stat the weights file");
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    feed(name);
    feed(std::string(reinterpret_cast<const char*>(&size), sizeof size));
    std::FILE* f = std::fopen(p.c_str(), "rb");
    CADA_CHECK(f != nullptr, p, ": cannot open the weights file");
    // The header (8-byte length + JSON), then the first and last 64 KiB of the data.
    unsigned char len8[8] = {0};
    uint64_t hlen = 0;
    if (std::fread(len8, 1, 8, f) == 8)
      for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | len8[i];
    hlen = std::min<uint64_t>(hlen, size > 8 ? size - 8 : 0);
    std::string buf(static_cast<size_t>(hlen), '\0');
    size_t got = std::fread(&buf[0], 1, buf.size(), f);
    buf.resize(got);
    feed(buf);
    const size_t chunk = 64 << 10;
    buf.assign(chunk, '\0');
    buf.resize(std::fread(&buf[0], 1, chunk, f));
    feed(buf);
    if (size > 8 + hlen + 2 * chunk) {
      std::fseek(f, -static_cast<long>(chunk), SEEK_END);
      buf.assign(chunk, '\0');
      buf.resize(std::fread(&buf[0], 1, chunk, f));
      feed(buf);
    }
    std::fclose(f);
  }
  char out[40];
  std::snprintf(out, sizeof out, "fnv1a64:%016llx", static_cast<unsigned long long>(h));
  return out;
}

// ---------------------------------------------------------------- records

json chain_record(const ScoredSample& s, const ChainPrompt& p, const json& run_info,
                  const std::vector<std::string>& case_ids) {
  json scores = json::object();
  for (const auto& [k, v] : s.scores) scores[k] = v ? json(*v) : json(nullptr);
  json j;
  j["format_version"] = kChainFormatVersion;
  j["id"] = s.prompt_id + "/" + std::to_string(s.sample);
  j["prompt_id"] = s.prompt_id;
  j["messages"] = messages_json(p.messages);  // the ORIGINAL prompt: no specification
  j["prompt"] = last_user_text(p.messages);
  j["completion"] = s.response;
  j["response"] = s.response;
  j["reasoning"] = s.reasoning;
  j["answer"] = s.answer;
  j["label"] = s.label;
  j["category"] = s.category;
  for (const char* k : {"kind", "split"})
    if (p.record.contains(k)) j[k] = p.record[k];
  j["scores"] = scores;
  j["well_formed"] = s.well_formed;
  j["rank"] = s.rank;
  j["setting"] = run_info.at("setting");
  j["spec_id"] = run_info.at("spec_id");
  j["spec_cases"] = case_ids;
  j["sample_index"] = s.sample;
  j["seed"] = s.seed;
  j["finish_reason"] = s.finish_reason;
  j["sampling"] = run_info.at("sampling");
  j["model"] = run_info.at("model");
  return j;
}

// ---------------------------------------------------------------- the run

namespace {

struct Paths {
  std::string dir, config, samples, progress, chains, summary;
  explicit Paths(const std::string& d)
      : dir(d),
        config(io::join_path(d, "config.json")),
        samples(io::join_path(d, "samples.jsonl")),
        progress(io::join_path(d, "progress.jsonl")),
        chains(io::join_path(d, "chains.jsonl")),
        summary(io::join_path(d, "summary.json")) {}
};

// The parts of the config that decide which samples are generated and how they are scored.
json identity(const ChainsConfig& cfg, const json& rewards_resolved, const json& run_info) {
  json c = config::to_json(cfg);
  c.erase("output_dir");
  c.erase("filter");  // stage 1 and 2 are recomputed from samples.jsonl: filters may change on resume
  for (const char* k : {"threads", "prompts_per_batch", "batch_rows", "reward_batch_size"}) c["runtime"].erase(k);
  c["rewards"] = rewards_resolved;
  return {{"config", c}, {"spec_id", run_info["spec_id"]}, {"model_fingerprint", run_info["model"]["fingerprint"]}};
}

}  // namespace

namespace {

// One generate-chains run: its phases (rewards, run folder, what is already done, generation of
// the pending prompts round by round, the final selection) over the state they share.
class ChainsRun {
 public:
  ChainsRun(const ChainsConfig& cfg, const std::string& source);
  ChainsSummary run(bool resume);

 private:
  reward::RewardSet build_rewards();
  void claim_folder(bool resume);
  void load_finished();
  void generate_pending();
  // One round: the prompts pending[b0, end) generated (each rank its share), scored, filtered
  // and written prompt by prompt. Returns true when the selection is full (no later prompt can
  // change it); the round's remaining prompts are then left pending.
  bool generate_round(rollout::Generator& gen, size_t b0, size_t end, int64_t& written, Progress& bar);
  std::vector<std::vector<ScoredSample>> score_round(const std::vector<size_t>& round,
                                                      const std::vector<rollout::Request>& reqs,
                                                      const std::vector<std::vector<rollout::Completion>>& results);
  void write_prompt(size_t i, std::vector<ScoredSample>& v, int64_t written);
  std::vector<const ScoredSample*> candidates() const;
  void select_and_write();

  const ChainsConfig& cfg_;
  const std::string& source_;
  const Paths paths_;
  std::shared_ptr<const Spec> spec_;
  PromptBuilder builder_;
  std::vector<ChainPrompt> prompts_;
  std::map<std::string, size_t> index_of_;
  const int64_t K_;
  json rewards_resolved_;
  reward::RewardSet rewards_;
  json run_info_;
  dist::Comm& comm_;
  std::vector<std::vector<ScoredSample>> by_prompt_;
  std::vector<char> finished_;
  std::vector<size_t> pending_;
  std::vector<std::vector<int32_t>> ids_;        // token ids of the pending prompts, with the specification
  rollout::SamplingParams sampling_;
  std::unique_ptr<io::JsonlWriter> samples_w_, progress_w_;
  KillHook hook_;
  ChainsSummary sum_;
};

ChainsRun::ChainsRun(const ChainsConfig& cfg, const std::string& source)
    : cfg_(cfg), source_(source), paths_(cfg.output_dir), spec_(spec_of(cfg)),
      builder_({cfg.setting, cfg.prompt, cfg.cases}, spec_), prompts_(load_chain_prompts(cfg.data)),
      K_(cfg.sampling.num_samples), rewards_(build_rewards()), comm_(dist::init_from_env(cfg.runtime.device)) {
  CADA_CHECK(!prompts_.empty(), cfg.data.prompts, ": no prompt records left after the data filters (split '",
             cfg.data.split, "')");
  for (size_t i = 0; i < prompts_.size(); ++i) index_of_[prompts_[i].id] = i;
  json sampling = cfg.sampling.to_json();
  sampling.update({{"num_samples", K_},
                   {"max_new_tokens", cfg.sampling.max_new_tokens},
                   {"seed", cfg.sampling.seed},
                   {"style", cfg.prompt.style},
                   {"response_prefix", cfg.prompt.response_prefix}});
  run_info_ = {{"setting", cfg.setting},
               {"spec_id", spec_ ? json(spec_->id()) : json(nullptr)},
               {"spec", spec_ ? json(cfg.spec) : json(nullptr)},
               {"model", {{"path", cfg.model}, {"fingerprint", model_fingerprint(cfg.model)}}},
               {"sampling", sampling}};
  by_prompt_.resize(prompts_.size());
  finished_.assign(prompts_.size(), 0);
}

// Rewards are validated and built before the policy is loaded.
reward::RewardSet ChainsRun::build_rewards() {
  reward::RuntimeOptions rt;
  rt.device = cfg_.runtime.device;
  rt.dtype = cfg_.runtime.dtype;
  rt.batch_size = cfg_.runtime.reward_batch_size;
  rewards_resolved_ = cfg_.rewards.is_string() ? config::load_file(cfg_.rewards.get<std::string>()) : cfg_.rewards;
  auto rewards = cfg_.rewards.is_string() ? reward::RewardSet::load(cfg_.rewards.get<std::string>(), rt)
                                          : reward::RewardSet::from_json(cfg_.rewards, source_ + " (rewards)", rt);
  std::vector<std::string> names;
  for (const auto& r : rewards.rewards()) names.push_back(r->name());
  for (const auto& [key, name] : std::vector<std::pair<std::string, std::string>>{
           {"harmless_reward", cfg_.filter.harmless_reward},
           {"helpful_reward", cfg_.filter.helpful_reward},
           {"best_of", cfg_.filter.best_of}})
    CADA_CHECK(name.empty() || util::contains(names, name), source_, ": 'filter.", key, "' names the reward '", name,
               "', which 'rewards' does not configure (configured: ", util::join(names), ")");
  return rewards;
}

// The run folder: fresh, or resumed after checking that the configuration is the run's.
void ChainsRun::claim_folder(bool resume) {
  const json ident = identity(cfg_, rewards_resolved_, run_info_);
  // Several processes (torchrun, mpirun, srun) share the prompts: each generates and scores its
  // part of every round, all receive everything, and rank 0 writes the files, exactly as one
  // process would (so a run can be resumed with any number of processes).
  dist::check_same(comm_, ident.dump(), "generate-chains config");
  const bool has_run =
      io::file_exists(paths_.samples) || io::file_exists(paths_.progress) || io::file_exists(paths_.chains);
  if (!resume) {
    CADA_CHECK(!has_run, paths_.dir, ": the folder already holds a generate-chains run; pass --resume to continue it "
               "(or to re-filter it) or choose another output_dir");
  } else if (io::file_exists(paths_.config)) {
    const json saved = config::load_file(paths_.config);
    CADA_CHECK(saved.contains("identity"), paths_.config, ": not a generate-chains run config (no 'identity')");
    if (saved["identity"] != ident) {
      std::vector<std::string> diffs;
      for (const auto& op : json::diff(saved["identity"], ident)) {
        diffs.push_back(op.value("path", std::string("?")));
        if (diffs.size() >= 5) break;
      }
      CADA_FAIL(paths_.config, ": --resume needs the configuration the run started with (only filter and runtime "
                "batching may change); these differ: ", util::join(diffs));
    }
  } else if (has_run) {
    CADA_FAIL(paths_.dir, ": the run has samples but no config.json; it cannot be resumed safely");
  }
  comm_.barrier();  // every rank has looked at the folder before rank 0 writes to it
  if (comm_.is_main()) {
    io::make_dirs(paths_.dir);
    io::atomic_write_file(paths_.config,
                          json{{"identity", ident}, {"config", config::to_json(cfg_)}, {"run", run_info_}}.dump(2) + "\n");
  }
}

// What is already done: the finished prompts and their samples; samples of unfinished prompts
// (written before a kill) are dropped and redone.
void ChainsRun::load_finished() {
  size_t dropped = 0;
  if (comm_.is_main()) {
    io::truncate_partial_last_line(paths_.progress);
    dropped = io::truncate_partial_last_line(paths_.samples) > 0 ? 1 : 0;
  }
  comm_.barrier();
  if (io::file_exists(paths_.progress)) {
    io::JsonlReader r(paths_.progress);
    json j;
    while (r.next(j)) {
      const std::string where = paths_.progress + ":" + std::to_string(r.line());
      CADA_CHECK(j.is_object() && j.contains("id") && j["id"].is_string(), where, ": expected {\"id\": ...}");
      auto it = index_of_.find(j["id"].get<std::string>());
      CADA_CHECK(it != index_of_.end(), where, ": prompt '", j["id"].get<std::string>(),
                 "' is not among the configured prompts");
      finished_[it->second] = 1;
    }
  }
  if (io::file_exists(paths_.samples)) {
    io::JsonlReader r(paths_.samples);
    json j;
    while (r.next(j)) {
      const std::string where = paths_.samples + ":" + std::to_string(r.line());
      ScoredSample s = sample_from_json(j, where);
      auto it = index_of_.find(s.prompt_id);
      if (it == index_of_.end() || !finished_[it->second]) {
        ++dropped;  // written before the kill, its prompt not marked finished: redone
        continue;
      }
      s.prompt_index = static_cast<int64_t>(it->second);
      by_prompt_[it->second].push_back(std::move(s));
    }
  }
  for (size_t i = 0; i < prompts_.size(); ++i) {
    if (!finished_[i]) continue;
    auto& v = by_prompt_[i];
    std::sort(v.begin(), v.end(), [](const ScoredSample& a, const ScoredSample& b) { return a.sample < b.sample; });
    CADA_CHECK(static_cast<int64_t>(v.size()) == K_, paths_.samples, ": prompt '", prompts_[i].id,
               "' is marked finished but has ", v.size(), " sample line(s) instead of ", K_);
  }
  // Rewrite samples.jsonl with the finished prompts' lines only (also cuts a partial last line).
  if (dropped > 0 && comm_.is_main()) {
    std::string out;
    for (size_t i = 0; i < prompts_.size(); ++i)
      if (finished_[i])
        for (const auto& s : by_prompt_[i])
          out += sample_to_json(s).dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    io::atomic_write_file(paths_.samples, out);
  }
  const auto n_done = std::count(finished_.begin(), finished_.end(), 1);
  CADA_INFO("resuming ", paths_.dir, ": ", n_done, " of ", prompts_.size(), " prompt(s) finished",
            dropped ? ", " + std::to_string(dropped) + " sample line(s) of unfinished prompts dropped" : "");
}

std::vector<const ScoredSample*> ChainsRun::candidates() const {
  std::vector<const ScoredSample*> c;
  for (const auto& v : by_prompt_) {
    std::vector<const ScoredSample*> kept;
    for (const auto& s : v)
      if (s.dropped.empty()) kept.push_back(&s);
    std::sort(kept.begin(), kept.end(), [](auto* a, auto* b) { return a->rank < b->rank; });
    c.insert(c.end(), kept.begin(), kept.end());
  }
  return c;
}

// Scores the round's completions: each rank parses and scores its share of the prompts, in one
// call to the rewards; every rank receives every prompt's scored samples.
std::vector<std::vector<ScoredSample>> ChainsRun::score_round(const std::vector<size_t>& round,
                                                              const std::vector<rollout::Request>& reqs,
                                                              const std::vector<std::vector<rollout::Completion>>& results) {
  const auto mine = dist::shard(static_cast<int64_t>(round.size()), comm_.rank(), comm_.world());
  std::vector<std::vector<ScoredSample>> batch;
  std::vector<reward::Sample> rs;
  for (int64_t q = mine.begin; q < mine.end; ++q) {
    const size_t i = round[q];
    batch.emplace_back();
    for (int64_t k = 0; k < K_; ++k) {
      const auto& c = results[q][static_cast<size_t>(k)];
      ScoredSample s;
      s.prompt_id = prompts_[i].id;
      s.prompt_index = static_cast<int64_t>(i);
      s.sample = k;
      s.seed = reqs[q].seed;
      s.label = prompts_[i].label;
      s.category = prompts_[i].category;
      s.text = cfg_.prompt.response_prefix + c.text;
      const auto parsed = text::parse_response(s.text, cfg_.prompt.style);
      s.reasoning = parsed.reasoning;
      s.answer = parsed.answer;
      s.well_formed = parsed.well_formed;
      s.response = parsed.well_formed ? text::format_response(parsed.reasoning, parsed.answer, cfg_.prompt.style)
                                      : util::trim(s.text);
      s.finish_reason = c.finish_reason;
      reward::Sample r;
      r.prompt = prompts_[i].messages;  // the ORIGINAL prompt, without the specification
      r.response = s.response;
      r.label = s.label;
      r.category = s.category;
      rs.push_back(std::move(r));
      batch.back().push_back(std::move(s));
    }
  }
  if (!rs.empty())
    for (auto& [name, values] : rewards_.score(rs))
      for (size_t q = 0; q < batch.size(); ++q)
        for (size_t k = 0; k < batch[q].size(); ++k) batch[q][k].scores[name] = values[q * K_ + k];
  if (comm_.world() == 1) return batch;
  std::vector<json> items;
  for (const auto& v : batch) {
    json a = json::array();
    for (const auto& x : v) a.push_back(sample_to_json(x));
    items.push_back(std::move(a));
  }
  std::vector<std::vector<ScoredSample>> all;
  for (const auto& a : rollout::gather_shards(comm_, items, static_cast<int64_t>(round.size()))) {
    all.emplace_back();
    for (const auto& j : a) {
      all.back().push_back(sample_from_json(j, "data-parallel exchange"));
      CADA_CHECK(index_of_.count(all.back().back().prompt_id), "data parallel: a rank sent an unknown prompt id");
    }
  }
  return all;
}

// Filters a prompt's samples and writes them, then its progress line (rank 0). The kill hooks
// of the resume tests fire between these writes.
void ChainsRun::write_prompt(size_t i, std::vector<ScoredSample>& v, int64_t written) {
  filter_prompt(v, cfg_.filter);
  if (!comm_.is_main()) return;
  for (size_t k = 0; k < v.size(); ++k) {
    if (k == 0 && hook_.at("partial", written)) {
      const std::string line = sample_to_json(v[k]).dump();
      std::FILE* f = std::fopen(paths_.samples.c_str(), "ab");
      if (f) {
        std::fwrite(line.data(), 1, line.size() / 2, f);
        std::fclose(f);
      }
      ::raise(SIGKILL);
    }
    samples_w_->write(sample_to_json(v[k]));
  }
  if (hook_.at("samples", written)) ::raise(SIGKILL);
  progress_w_->write({{"id", prompts_[i].id}, {"index", i}});
  if (hook_.at("progress", written)) ::raise(SIGKILL);
}

bool ChainsRun::generate_round(rollout::Generator& gen, size_t b0, size_t end, int64_t& written, Progress& bar) {
  std::vector<size_t> round(pending_.begin() + b0, pending_.begin() + end);
  std::vector<rollout::Request> reqs;
  for (size_t i : round) {
    rollout::Request r;
    r.prompt_ids = ids_[i];
    r.params = sampling_;
    r.n = K_;
    r.seed = derive_seed(cfg_.sampling.seed, prompts_[i].id);
    reqs.push_back(std::move(r));
  }
  const auto results = rollout::generate_sharded(gen, comm_, reqs);
  auto batch = score_round(round, reqs, results);
  // Write prompt by prompt: its samples, then its progress line.
  for (size_t q = 0; q < round.size(); ++q) {
    const size_t i = round[q];
    ++written;
    write_prompt(i, batch[q], written);
    if (hook_.delay_ms > 0) ::usleep(static_cast<useconds_t>(hook_.delay_ms) * 1000);
    by_prompt_[i] = std::move(batch[q]);
    finished_[i] = 1;
    const auto reasons = select_chains(candidates(), cfg_.filter);
    const auto n_sel = std::count(reasons.begin(), reasons.end(), std::string());
    bar.advance(1, "chains " + std::to_string(n_sel));
    if (selection_full(reasons, cfg_.filter)) {
      sum_.stopped_early = b0 + q + 1 < pending_.size();
      return true;
    }
  }
  return false;
}

// Generates the pending prompts round by round (prompts_per_batch per process), until they are
// done or the total cap makes the rest pointless.
void ChainsRun::generate_pending() {
  bool full = selection_full(select_chains(candidates(), cfg_.filter), cfg_.filter);
  sum_.stopped_early = full && !pending_.empty();
  if (pending_.empty() || full) return;
  model::configure_threads(cfg_.runtime.threads);
  auto txt = text::load_text(cfg_.model, cfg_.chat_template, /*required=*/true);
  CADA_CHECK(txt.chat_template != nullptr, cfg_.model, ": the model folder has no chat template; set 'chat_template'");
  const auto mcfg = model::ModelConfig::load(cfg_.model);
  // Build and tokenize every pending prompt first: a prompt too long for the model fails now.
  ids_.assign(prompts_.size(), {});
  for (size_t i : pending_) {
    const BuiltPrompt bp = builder_.build(prompts_[i].messages, prompts_[i].category, prompts_[i].id);
    ids_[i] = txt.tokenizer->encode(builder_.render(bp, *txt.chat_template), /*add_special_tokens=*/false);
    const int64_t need = static_cast<int64_t>(ids_[i].size()) + cfg_.sampling.max_new_tokens;
    CADA_CHECK(need <= mcfg.max_position_embeddings, prompts_[i].where, ": prompt '", prompts_[i].id, "' is ",
               ids_[i].size(), " tokens with the specification; with sampling.max_new_tokens ",
               cfg_.sampling.max_new_tokens, " it exceeds the model's max_position_embeddings ",
               mcfg.max_position_embeddings, " (shorten the spec, lower cases.k or max_new_tokens)");
  }
  // End-of-sequence ids come from the tokenizer (its EOS, generation_config.json's, chat end tokens).
  sampling_ = cfg_.sampling.params(cfg_.sampling.max_new_tokens);
  auto net = model::load_model(cfg_.model, {cfg_.runtime.device, cfg_.runtime.dtype});
  rollout::Generator gen(*net, txt.tokenizer.get(), cfg_.runtime.options("sampling.max_new_tokens or runtime.batch_rows"));
  if (comm_.is_main()) {
    samples_w_ = std::make_unique<io::JsonlWriter>(paths_.samples, io::JsonlWriter::Mode::kAppend);
    progress_w_ = std::make_unique<io::JsonlWriter>(paths_.progress, io::JsonlWriter::Mode::kAppend);
  }
  int64_t written = 0;
  Progress bar("generate-chains", static_cast<int64_t>(pending_.size()), "prompts");
  const size_t per = static_cast<size_t>(cfg_.runtime.prompts_per_batch) * static_cast<size_t>(comm_.world());
  for (size_t b0 = 0; b0 < pending_.size() && !full; b0 += per) {
    full = generate_round(gen, b0, std::min(pending_.size(), b0 + per), written, bar);
  }
  if (comm_.is_main()) {
    samples_w_->flush();
    progress_w_->flush();
  }
  const auto& st = gen.stats();
  const double secs = st.prefill_s + st.decode_s;
  char line[200];
  std::snprintf(line, sizeof line, "%lld prompt tokens, %lld generated tokens in %.2fs (prefill %.2fs, decode %.2fs, %.1f tok/s)",
                (long long)st.prompt_tokens, (long long)st.generated_tokens, secs, st.prefill_s, st.decode_s,
                secs > 0 ? st.generated_tokens / secs : 0.0);
  bar.finish(line);
  if (sum_.stopped_early) CADA_INFO("filter.total_cap reached: the remaining prompts cannot change the selection");
}

// The final selection over every finished prompt, chains.jsonl and summary.json written atomically.
void ChainsRun::select_and_write() {
  const auto cands = candidates();
  const auto reasons = select_chains(cands, cfg_.filter);
  std::string out;
  std::map<std::string, int64_t> stage1, stage2, by_cat, by_label;
  std::map<std::string, std::pair<double, int64_t>> score_sum;
  int64_t n_samples = 0, n_wf = 0, harmful = 0;
  for (size_t i = 0; i < prompts_.size(); ++i) {
    if (!finished_[i]) continue;
    ++sum_.prompts_done;
    for (const auto& s : by_prompt_[i]) {
      ++n_samples;
      n_wf += s.well_formed;
      stage1[s.dropped.empty() ? "kept" : s.dropped] += 1;
      for (const auto& [k, v] : s.scores)
        if (v) {
          score_sum[k].first += *v;
          score_sum[k].second += 1;
        }
    }
  }
  for (size_t c = 0; c < cands.size(); ++c) {
    if (!reasons[c].empty()) {
      stage2[reasons[c]] += 1;
      continue;
    }
    const ScoredSample& s = *cands[c];
    const ChainPrompt& p = prompts_[static_cast<size_t>(s.prompt_index)];
    std::vector<std::string> case_ids;
    if (cfg_.setting == "cases") case_ids = builder_.build(p.messages, p.category, p.id).case_ids;
    out += chain_record(s, p, run_info_, case_ids).dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    ++sum_.chains;
    by_cat[s.category] += 1;
    by_label[s.label] += 1;
    harmful += s.label == "harmful";
  }
  if (comm_.is_main()) io::atomic_write_file(paths_.chains, out);
  sum_.samples = n_samples;
  json means = json::object();
  for (const auto& [k, v] : score_sum) means[k] = v.second ? v.first / v.second : 0.0;
  stage2["selected"] = sum_.chains;
  sum_.json = {{"setting", cfg_.setting},
               {"spec_id", run_info_["spec_id"]},
               {"model", run_info_["model"]},
               {"prompts_total", sum_.prompts_total},
               {"prompts_done", sum_.prompts_done},
               {"samples", n_samples},
               {"well_formed_rate", n_samples ? double(n_wf) / n_samples : 0.0},
               {"mean_scores", means},
               {"per_prompt", stage1},
               {"global", stage2},
               {"chains", sum_.chains},
               {"chains_by_category", by_cat},
               {"chains_by_label", by_label},
               {"harmful_fraction", sum_.chains ? double(harmful) / sum_.chains : 0.0},
               {"stopped_early", sum_.stopped_early}};
  if (comm_.is_main()) io::atomic_write_file(paths_.summary, sum_.json.dump(2) + "\n");
}

ChainsSummary ChainsRun::run(bool resume) {
  claim_folder(resume);
  if (resume) load_finished();
  // Stage 1 is recomputed from the stored samples (filters may change on resume).
  for (auto& v : by_prompt_)
    if (!v.empty()) filter_prompt(v, cfg_.filter);
  sum_.prompts_total = static_cast<int64_t>(prompts_.size());
  for (size_t i = 0; i < prompts_.size(); ++i)
    if (!finished_[i]) pending_.push_back(i);
  generate_pending();
  select_and_write();
  comm_.barrier();
  return sum_;
}

}  // namespace

ChainsSummary run_generate_chains(const ChainsConfig& cfg, const std::string& source, bool resume) {
  ChainsRun run(cfg, source);
  return run.run(resume);
}

}  // namespace cada::safety
