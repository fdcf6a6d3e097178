// `cada eval`: generate on benchmark prompts (with jailbreaks and Best-of-N), then judge with
// the reward registry and report safety metrics. The two phases meet in a generation file, so
// any judge can re-score old generations.
//
//   auto cfg = cada::eval::load_config("configs/tiny/eval.json", {"bon.n=4"});
//   cada::eval::EvalRunner run(cfg, "configs/tiny/eval.json");
//   run.generate(cfg.output_dir + "/generations.jsonl");
//   auto report = run.judge(cfg.output_dir + "/generations.jsonl", cfg.output_dir);
//
// The generation file (JSONL) has one record per (prompt, jailbreak):
//   {"dataset", "id", "index", "prompt", "messages"?, "transformed_prompt", "jailbreak", "label",
//    "category", "source", "meta", "where", "prompt_ids", "seed",
//    "completions": [{"text", "decoded", "ids", "finish_reason", "selector_scores": {...}}],
//    "bon": {"n", "selectors", "chosen": {selector: index}, "layer"},
//    "sampling": {...}, "model": {"path", "fingerprint"}, "base_model": {...} | null}
// ("prompt" is the original request, which judges read; "decoded" is the text judges read
// after the jailbreak's decoder). It is also valid `cada score` input.
//
// The judge phase writes scores.jsonl (the records with completions[j].scores), report.json,
// report.md and report.png into the output folder.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cada/eval/metrics.h"
#include "cada/eval/utility_run.h"
#include "cada/rollout/sampling.h"

namespace cada::reward {
class RewardSet;
}

namespace cada::eval {

// The shared sampler and engine settings (rollout/sampling.h), greedy by default, with eval's
// completion length and seed.
struct SamplingConfig : rollout::SamplingConfig, rollout::EngineConfig {
  int64_t max_new_tokens = 256;
  uint64_t seed = 0;
  SamplingConfig() { temperature = 0.0f; }  // greedy unless Best-of-N asks for samples
  template <class V> void visit(V& v) {
    rollout::SamplingConfig::visit(v);
    v("max_new_tokens", max_new_tokens, "tokens generated at most per completion");
    v("seed", seed, "sampling seed (record r uses seed * 1000003 + r)");
    rollout::EngineConfig::visit(v);
  }
};

struct BonConfig {
  int64_t n = 1;                           // completions per (prompt, jailbreak)
  nlohmann::json selector = "random";      // a selector name or a list of them
  int64_t layer = 12;                      // latent: hidden_states index, clipped to the layer count
  std::string reward;                      // reward selector: the reward's name
  uint64_t seed = 0;                       // random selector
  int64_t batch_size = 8;                  // sequences per scoring forward pass
  template <class V> void visit(V& v) {
    v("n", n, "completions sampled per prompt and jailbreak (Best-of-N)");
    v("selector", selector,
      "selector name or list: random | perplexity | self_certainty | kl | reward | latent (metrics per selector)");
    v("layer", layer, "latent: hidden_states[L] (0 = embeddings), clipped to the model's layer count");
    v("reward", reward, "reward selector: name of the configured reward to maximise");
    v("seed", seed, "seed of the random selector");
    v("batch_size", batch_size, "sequences per forward pass when scoring the candidates");
  }
};

struct JudgesConfig {
  std::string refusal;       // reward name: 1 = refusal
  std::string strongreject;  // reward name: StrongREJECT score
  std::string helpfulness;   // reward name: reward-model score on benign prompts
  nlohmann::json asr = nlohmann::json::array();  // names or {"reward", "threshold", "success": above|below}
  std::string truncated = "exclude";  // eval/truncation.h: exclude | as_refusal | as_compliance
  std::string target = "answer";      // eval/judge_target.h: what the harm judges read
  std::string reasoning_leak;         // harm judge read on the reasoning of refusing answers ("" = off)
  double leak_threshold = 0.5;        // its value from which the reasoning counts as harmful
  std::string copyright;              // hashing judge of HarmBench's copyright behaviours ("" = exclude them)
  template <class V> void visit(V& v) {
    v("refusal", refusal, "reward giving 1 for a refusal: refusal rate, XSTest over-refusal / unsafe compliance");
    v("strongreject", strongreject, "reward giving the StrongREJECT score (judge, parser strongreject)");
    v("helpfulness", helpfulness, "reward (model) scored on benign prompts");
    v("asr", asr,
      "attack-success judges: reward names or {\"reward\", \"threshold\": 0.5, \"success\": \"above\" | \"below\"}");
    v("truncated", truncated,
      "completions without a final answer: exclude (refusal and asr values null) | as_refusal | as_compliance");
    v("target", target, "what the harm judges (strongreject, asr) read: answer | reasoning | both",
      {"answer", "reasoning", "both"});
    v("reasoning_leak", reasoning_leak,
      "harm judge (a reward, 1 = harmful) read on the reasoning behind refusing answers: the reasoning_leak rate");
    v("leak_threshold", leak_threshold, "reasoning_leak: judge value from which the reasoning counts as harmful");
    v("copyright", copyright,
      "hashing judge (a reward) for HarmBench's copyright behaviours; empty = they are excluded, with a note");
  }
};

struct MetricsConfig {
  int64_t bootstrap = 1000;
  double confidence = 0.95;
  uint64_t seed = 0;
  std::string plot;  // metric drawn in report.png ("" = strongreject, else an asr, else refusal_rate; one with values)
  template <class V> void visit(V& v) {
    v("bootstrap", bootstrap, "bootstrap resamples for the confidence intervals (0 = none)");
    v("confidence", confidence, "confidence level of the intervals");
    v("seed", seed, "bootstrap seed");
    v("plot", plot, "metric drawn in report.png (empty = the first of strongreject, asr:*, refusal_rate with values)");
  }
};

struct EvalConfig {
  std::string model;                 // the evaluated model (HF folder)
  std::string base_model;            // for the kl and latent selectors
  std::string chat_template;         // override the detected template
  bool raw = false;                  // prompts as raw text instead of a user turn
  std::string output_dir = "runs/eval";
  std::string data_dir;              // base folder of relative dataset paths
  nlohmann::json datasets = nlohmann::json::array();
  nlohmann::json jailbreaks = nlohmann::json::array({"none"});
  nlohmann::json rewards;            // reward registry config (object) or the path of one
  SamplingConfig sampling;
  BonConfig bon;
  JudgesConfig judges;
  MetricsConfig metrics;
  UtilityConfig utility;             // MMLU and GSM8K beside the safety metrics
  std::string device = "cpu";
  std::string dtype = "auto";
  int64_t batch_size = 8;            // reward / judge forward passes
  int64_t chunk = 256;               // responses handed to the rewards at a time
  int threads = 0;
  template <class V> void visit(V& v) {
    v("model", model, "the evaluated model: a Hugging Face folder");
    v("base_model", base_model, "base model for the kl and latent Best-of-N selectors");
    v("chat_template", chat_template, "override the chat template detected in the model folder");
    v("raw", raw, "feed prompts as raw text (BOS added) instead of a user turn");
    v("output_dir", output_dir, "where generations.jsonl, scores.jsonl and report.{json,md,png} go");
    v("data_dir", data_dir, "folder that relative dataset paths start from (empty = the working directory)");
    v("datasets", datasets, "list of {name, path, format, label, where, limit, sample, seed, jailbreaks}");
    v("jailbreaks", jailbreaks, "list of jailbreak types or {name, type, ...} objects (docs/eval.md)");
    v("rewards", rewards, "reward registry config (an object, or the path of a JSON file); see docs/rewards.md");
    v.section("sampling", sampling, "generation");
    v.section("bon", bon, "Best-of-N at inference");
    v.section("judges", judges, "which configured rewards feed which metric");
    v.section("metrics", metrics, "confidence intervals and the plot");
    v.section("utility", utility, "MMLU and GSM8K accuracy beside the safety metrics (eval/utility_run.h)");
    v("device", device, "cpu, cuda or cuda:N");
    v("dtype", dtype, "auto (checkpoint dtype on GPU, float32 on CPU), float32, bfloat16, float16");
    v("batch_size", batch_size, "sequences per forward pass of the rewards and judges");
    v("chunk", chunk, "responses handed to the rewards at a time");
    v("threads", threads, "intra-op CPU threads (0 = all available)");
  }
};

// Reads a config file (comments allowed), applies key=value overrides, parses and checks the
// parts that need no model (datasets' fields, jailbreak names, selectors, judge names against
// the reward config). Throws one error listing every problem.
EvalConfig load_config(const std::string& path, const std::vector<std::string>& overrides = {});
EvalConfig parse_config(const nlohmann::json& j, const std::string& source);

// The selectors of a config, in order ("all" first, then bon.selector when bon.n > 1).
std::vector<std::string> report_selectors(const EvalConfig& cfg);
// The metric spec from the judges section; every configured reward without a judge role is
// also reported as a mean (mean:<name>).
MetricSpec metric_spec(const EvalConfig& cfg, const std::vector<std::string>& reward_names);

// A cheap fingerprint of a model folder: FNV-1a 64 over config.json and, for every
// *.safetensors file, its name, size and first and last MiB. "fnv1a64:<16 hex digits>".
std::string model_fingerprint(const std::string& dir);

class EvalRunner {
 public:
  EvalRunner(EvalConfig cfg, std::string source);
  ~EvalRunner();
  // Phase 1: loads the datasets and the model, generates, scores Best-of-N candidates and
  // writes the generation file (atomically). Returns the number of records.
  size_t generate(const std::string& out_path);
  // Phase 2: judges a generation file with the configured rewards and writes scores.jsonl and
  // report.{json,md,png} into out_dir. Returns the report.
  nlohmann::json judge(const std::string& generations, const std::string& out_dir);

 private:
  reward::RewardSet& rewards();
  EvalConfig cfg_;
  std::string source_;
  std::unique_ptr<reward::RewardSet> rewards_;
};

}  // namespace cada::eval
