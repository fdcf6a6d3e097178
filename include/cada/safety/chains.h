// Reasoning chains: K samples per prompt with the specification in context, scored by the
// reward registry, filtered, and written as SFT records whose prompt is the ORIGINAL
// conversation without the specification (context distillation). `cada generate-chains`.
//
// Filtering has two stages (docs/safety.md):
//   1. per prompt (filter_prompt): format well formed, the harmlessness threshold on harmful
//      prompts, the helpfulness threshold on benign prompts, duplicate responses, then best-of-K
//      by a named reward (keep the top m);
//   2. over all prompts in processing order (select_chains): per-category caps, the
//      harmful/benign mix and the total cap. Pure functions of the candidates in order, so a
//      resumed run selects exactly what an uninterrupted one does.
//
// Files in output_dir: config.json (resolved config + spec id + model fingerprint),
// samples.jsonl (every sample with its scores and its stage-1 outcome; append-only),
// progress.jsonl (one line per finished prompt, written after its samples; append-only),
// chains.jsonl (the selected chains, written atomically at the end), summary.json.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cada/rollout/sampling.h"
#include "cada/safety/prompt.h"
#include "cada/safety/spec.h"

namespace cada::safety {

constexpr int kChainFormatVersion = 1;

// One generated sample of a prompt, parsed and scored.
struct ScoredSample {
  std::string prompt_id;
  int64_t prompt_index = 0;       // position in the processing order
  int64_t sample = 0;             // 0..K-1
  std::string label, category;
  std::string text;               // response_prefix + generated text
  std::string reasoning, answer;  // parse_response(text, style)
  std::string response;           // format_response(reasoning, answer) when well formed, else strip(text)
  bool well_formed = false;
  std::string finish_reason;
  uint64_t seed = 0;              // the prompt's seed (sample j uses stream (seed, j))
  std::map<std::string, std::optional<double>> scores;
  // stage 1 outcome
  std::string dropped;            // "" = kept; else format | harmless | helpful | duplicate | best_of
  int64_t rank = -1;              // position among the prompt's kept samples (0 = best); -1 when dropped
};

struct FilterOptions {
  bool require_format = true;
  std::string harmless_reward;      // "" = no harmlessness threshold
  double harmless_min = 0.5;
  std::string helpful_reward;       // "" = no helpfulness threshold
  double helpful_min = 0.5;
  bool dedupe = true;
  std::string best_of;              // "" = keep in sample order
  int64_t keep_per_prompt = 1;      // top m per prompt; 0 = every sample that passed
  int64_t per_category_cap = 0;     // 0 = none
  nlohmann::json category_caps = nlohmann::json::object();  // {category: cap} overrides
  int64_t total_cap = 0;            // 0 = none
  std::optional<double> harmful_fraction;  // target share of harmful chains; null = no mix constraint
  template <class V> void visit(V& v) {
    v("require_format", require_format, "drop samples whose response is not well formed in prompt.style");
    v("harmless_reward", harmless_reward, "reward whose value must reach harmless_min on harmful prompts (empty = off)");
    v("harmless_min", harmless_min, "harmlessness threshold (value >= min passes; null values fail)");
    v("helpful_reward", helpful_reward, "reward whose value must reach helpful_min on benign prompts (empty = off)");
    v("helpful_min", helpful_min, "helpfulness threshold (value >= min passes; null values fail)");
    v("dedupe", dedupe, "drop a sample whose response equals an earlier kept sample of the same prompt");
    v("best_of", best_of, "reward ranking the samples of a prompt, highest first (empty = sample order)");
    v("keep_per_prompt", keep_per_prompt, "chains kept per prompt after ranking (0 = all that passed)");
    v("per_category_cap", per_category_cap, "chains at most per category (0 = no cap)");
    v("category_caps", category_caps, "per-category overrides of per_category_cap: {category: cap}");
    v("total_cap", total_cap, "chains at most in all (0 = no cap); generation stops once it is reached");
    v("harmful_fraction", harmful_fraction, "target share of chains from harmful prompts (null = any mix)");
  }
};

// Appends one sentence per invalid option (negative caps, fraction outside [0, 1], ...).
void check_filter_options(const FilterOptions& f, const std::string& prefix, std::vector<std::string>& problems);

// Stage 1 on the K samples of ONE prompt (in sample order): sets `dropped` and `rank`.
void filter_prompt(std::vector<ScoredSample>& samples, const FilterOptions& f);

// Stage 2 over the stage-1 survivors of all prompts, in processing order. Returns, per
// candidate, "" when selected, else the reason: category_cap | mix | total_cap.
//   - category caps: the first cap candidates of each category (in order) pass;
//   - mix (harmful_fraction f): with H harmful and B other candidates left and the total cap T
//     (infinite when 0), N = min(T, floor(H / f), floor(B / (1 - f))); the first round(f N)
//     harmful and the first N - round(f N) others pass (reason total_cap when T is what bound N);
//   - otherwise the first T candidates pass.
std::vector<std::string> select_chains(const std::vector<const ScoredSample*>& candidates, const FilterOptions& f);
// True when no later candidate can change the selection: total_cap > 0 and it is reached.
bool selection_full(const std::vector<std::string>& reasons, const FilterOptions& f);

// ---------------------------------------------------------------- generate-chains config

struct ChainsDataOptions {
  std::string prompts = "data/tiny-world/prompts.jsonl";
  std::string split = "train";      // "" = every record
  std::vector<std::string> labels;  // empty = all
  std::vector<std::string> kinds;   // empty = all
  std::vector<std::string> categories;  // empty = all
  std::string order = "shuffle";    // file | shuffle
  uint64_t seed = 0;
  int64_t limit = 0;                // first N after filtering and ordering; 0 = all
  template <class V> void visit(V& v) {
    v("prompts", prompts, "prompt records (JSONL): id, prompt | messages, label, category (split, kind)");
    v("split", split, "keep records whose 'split' equals this (empty = all)");
    v("labels", labels, "keep these labels only (empty = all)");
    v("kinds", kinds, "keep these kinds only (empty = all)");
    v("categories", categories, "keep these categories only (empty = all)");
    v("order", order, "processing order: file order, or shuffled by a seeded hash of the id", {"file", "shuffle"});
    v("seed", seed, "seed of order = shuffle");
    v("limit", limit, "process the first N records after filtering and ordering (0 = all)");
  }
};

// The shared sampler settings (rollout/sampling.h) with K, the completion length and the seed.
struct ChainsSamplingOptions : rollout::SamplingConfig {
  int64_t num_samples = 4;          // K
  int64_t max_new_tokens = 128;
  uint64_t seed = 0;
  template <class V> void visit(V& v) {
    v("num_samples", num_samples, "K samples per prompt");
    rollout::SamplingConfig::visit(v);
    v("max_new_tokens", max_new_tokens, "tokens generated at most per sample");
    v("seed", seed, "base seed; prompt p samples with derive_seed(seed, p.id), sample j with stream (that, j)");
  }
};

// Where and how the chains are generated; the engine settings are the shared ones.
struct ChainsRuntimeOptions : rollout::EngineConfig {
  std::string device = "cpu";
  std::string dtype = "auto";
  int threads = 0;
  int64_t prompts_per_batch = 8;    // prompts generated (and written) together
  int64_t reward_batch_size = 8;
  template <class V> void visit(V& v) {
    v("device", device, "cpu, cuda or cuda:N");
    v("dtype", dtype, "auto, float32, bfloat16 or float16");
    v("threads", threads, "intra-op CPU threads (0 = all available)");
    v("prompts_per_batch", prompts_per_batch, "prompts generated together; progress is recorded per prompt");
    rollout::EngineConfig::visit(v);
    v("reward_batch_size", reward_batch_size, "sequences per forward pass of model-based rewards");
  }
};

struct ChainsConfig {
  std::string model;
  std::string chat_template;
  std::string output_dir = "runs/chains";
  std::string setting = "explicit";   // none | explicit | cases
  std::string spec;                   // spec file ("" only for none)
  PromptFormat prompt;
  CaseSelectOptions cases;
  ChainsDataOptions data;
  ChainsSamplingOptions sampling;
  nlohmann::json rewards;             // reward registry config (object) or its path
  FilterOptions filter;
  ChainsRuntimeOptions runtime;
  template <class V> void visit(V& v) {
    v("model", model, "the policy: a Hugging Face model folder with tokenizer and chat template");
    v("chat_template", chat_template, "override the chat template detected in the model folder");
    v("output_dir", output_dir, "run folder: chains.jsonl, samples.jsonl, progress.jsonl, summary.json, config.json");
    v("setting", setting, "none: the prompt as is; explicit: explicit spec; cases: codes + cases",
      {"none", "explicit", "cases"});
    v("spec", spec, "specification file (data/specs/*.json) of the setting's kind; empty for none");
    v.section("prompt", prompt, "prompt layout and response structure");
    v.section("cases", cases, "case selection (cases setting)");
    v.section("data", data, "which prompts, in which order");
    v.section("sampling", sampling, "K samples per prompt");
    v("rewards", rewards, "reward registry config (an object, or the path of a JSON file); see docs/rewards.md");
    v.section("filter", filter, "which chains are kept");
    v.section("runtime", runtime, "devices and batching (do not change the output)");
  }
};

// Reads the config (comments allowed), applies key=value overrides and validates everything
// that needs no model: keys and types, choices, the spec file against the setting, filter
// options. Throws one cada::Error listing every problem.
ChainsConfig load_chains_config(const std::string& path, const std::vector<std::string>& overrides = {});
ChainsConfig parse_chains_config(const nlohmann::json& j, const std::string& source);

// A cheap fingerprint of a model folder: "fnv1a64:<hex>" over config.json, the weights index
// (when sharded) and, per *.safetensors file, its name, size, header and first and last 64 KiB.
std::string model_fingerprint(const std::string& dir);

struct ChainsSummary {
  int64_t prompts_total = 0;       // prompts in the processing order
  int64_t prompts_done = 0;        // prompts with samples (this run and earlier ones)
  int64_t samples = 0;
  int64_t chains = 0;              // records in chains.jsonl
  bool stopped_early = false;      // the total cap was reached before the last prompt
  nlohmann::json json;             // summary.json
};

// One prompt record to generate chains for.
struct ChainPrompt {
  std::string id;                          // the record's "id" ("line-<n>" when it has none)
  std::string where;                       // "file:line" for messages
  std::string label, category;
  std::vector<text::Message> messages;     // the ORIGINAL conversation (no specification)
  nlohmann::json record;                   // the record as read
};

// The prompts of a config in processing order (filtered, ordered, limited). Throws naming the
// file and line for a malformed record or a repeated id.
std::vector<ChainPrompt> load_chain_prompts(const ChainsDataOptions& d);

// Builds the prompts of the first `n` records without loading a model: for --show-prompts.
std::vector<BuiltPrompt> preview_prompts(const ChainsConfig& cfg, int64_t n);

// Runs (or, with resume, continues) generate-chains. Without resume, an output_dir that
// already holds samples / progress / chains is refused. With resume, config.json must match
// (runtime options aside), partial lines are cut, samples of prompts not marked finished in
// progress.jsonl are dropped and those prompts are redone; the final chains.jsonl equals an
// uninterrupted run's.
ChainsSummary run_generate_chains(const ChainsConfig& cfg, const std::string& source, bool resume);

// Builds the chain record of a selected sample (the format of docs/safety.md). run_info holds
// setting, spec_id, model {path, fingerprint} and sampling {...}; case_ids the cases inserted.
nlohmann::json chain_record(const ScoredSample& s, const ChainPrompt& prompt, const nlohmann::json& run_info,
                           const std::vector<std::string>& case_ids);

// samples.jsonl lines.
nlohmann::json sample_to_json(const ScoredSample& s);
// `where` names the line in errors.
ScoredSample sample_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace cada::safety
