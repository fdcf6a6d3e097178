// Rewards: a value per (prompt, response), built by name from a JSON config.
//
//   {"rewards": [
//     {"name": "harmless", "type": "rm", "model": "models/rm", "normalize": "sigmoid"},
//     {"name": "refusal",  "type": "refusal", "method": "xstest"},
//     {"name": "format",   "type": "format", "style": "think"},
//     {"name": "total",    "type": "composite", "terms": [
//        {"reward": "harmless", "weight": 1, "when": "harmful"},
//        {"reward": "refusal", "weight": -1, "when": "benign"},
//        {"reward": "format", "weight": 0.2}]}]}
//
//   auto set = cada::reward::RewardSet::load("rewards.json", {"cuda", "bfloat16", 16});
//   auto scores = set.score(samples);   // every reward, in config order; composites reuse values
//
// Types: rm, refusal, format, length, judge, composite (docs/rewards.md gives the exact
// semantics of each). Construction validates the WHOLE config first (unknown types and keys,
// missing model folders, config.json / weights headers, judge templates without {prompt} or
// {response}, unknown or cyclic composite terms) and throws one cada::Error listing every
// problem; only then are models loaded. Nothing is computed before all rewards exist.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cada/text/chat_template.h"

namespace cada::model {
class Transformer;
}
namespace cada::text {
class Tokenizer;
}

namespace cada::reward {

// One (prompt, response) pair to score.
struct Sample {
  std::vector<text::Message> prompt;  // the conversation before the response; a plain prompt is one user turn
  std::string response;               // the generated text (reasoning and answer, as generated)
  std::string label;                  // "harmful", "benign", or "" (unknown)
  std::string category;               // free text (e.g. a hazard category), "" when unknown
  std::string behavior;               // the request as a benchmark states it for its judge (HarmBench's
                                      // Behavior), "" = prompt_text()
  std::string context;                // a contextual behaviour's context (HarmBench), "" when none

  // A single-turn sample: prompt as one user message.
  static Sample from_prompt(const std::string& prompt, const std::string& response, const std::string& label = "",
                            const std::string& category = "");
  // Content of the last user message of the prompt ("" when there is none).
  std::string prompt_text() const;
};

using Values = std::vector<std::optional<double>>;

class Reward {
 public:
  Reward(std::string name, std::string type) : name_(std::move(name)), type_(std::move(type)) {}
  virtual ~Reward() = default;
  const std::string& name() const { return name_; }
  const std::string& type() const { return type_; }

  // One value per sample, in order; nullopt where the reward does not apply (or a judge's
  // output could not be parsed).
  virtual Values score(const std::vector<Sample>& samples) = 0;
  std::optional<double> score_one(const Sample& s) { return score({s}).at(0); }

  // Judge outputs that could not be parsed, since construction (0 for other types).
  virtual int64_t failures() const { return 0; }
  // True when the reward reads the prompt (rm, judge): samples without one are refused.
  virtual bool needs_prompt() const { return false; }
  // Rewards whose values this one combines (composite); RewardSet computes them first.
  virtual std::vector<std::string> dependencies() const { return {}; }
  // Combines the values already computed for dependencies() (composite only).
  virtual Values combine(const std::vector<Sample>& samples, const std::map<std::string, Values>& done);

 private:
  std::string name_, type_;
};

// Settings of the process, shared by every reward (the CLI's --device / --dtype / --batch-size).
struct RuntimeOptions {
  std::string device = "cpu";   // cpu, cuda, cuda:N
  std::string dtype = "auto";   // auto (checkpoint dtype on GPU, float32 on CPU), float32, bfloat16, float16
  int64_t batch_size = 8;       // sequences per forward pass (a reward's own batch_size wins)
};

// Shared while a RewardSet is built: models and tokenizers are loaded once per folder.
class BuildContext {
 public:
  explicit BuildContext(RuntimeOptions rt);
  ~BuildContext();
  const RuntimeOptions& runtime() const { return rt_; }
  model::Transformer model(const std::string& dir);                 // loaded once, eval mode
  std::shared_ptr<const text::Tokenizer> tokenizer(const std::string& dir);
  std::shared_ptr<Reward> reward(const std::string& name) const;    // an already built reward

 private:
  friend class RewardSet;
  RuntimeOptions rt_;
  struct Cache;
  std::unique_ptr<Cache> cache_;
};

// What a reward type's prepare step returns: how to build it, and which rewards it reads.
struct Prepared {
  std::function<std::shared_ptr<Reward>(BuildContext&)> build;
  std::vector<std::string> depends_on;
};

// Context of one config entry during validation.
struct PrepareInput {
  std::string name;                              // the entry's "name"
  nlohmann::json options;                        // the entry without "name" and "type"
  std::map<std::string, std::string> declared;   // every name in the config -> its type
  RuntimeOptions runtime;
};

// Parses and validates one entry without loading weights; appends one sentence per problem
// (not prefixed; the caller names the reward) and may return an empty Prepared when it did.
using PrepareFn = std::function<Prepared(const PrepareInput& in, std::vector<std::string>& problems)>;

// Registers a reward type (the built-in ones are always present); a later registration of the
// same name replaces the earlier one.
void register_reward_type(const std::string& type, PrepareFn prepare);
// The registered type names, sorted.
std::vector<std::string> reward_types();

class RewardSet {
 public:
  // config: {"rewards": [ {name, type, ...options}, ... ]}. `source` names it in errors.
  static RewardSet from_json(const nlohmann::json& config, const std::string& source,
                             const RuntimeOptions& rt = {});
  // Reads a JSON file (comments allowed) and calls from_json.
  static RewardSet load(const std::string& path, const RuntimeOptions& rt = {});

  size_t size() const { return rewards_.size(); }
  // In config order.
  const std::vector<std::shared_ptr<Reward>>& rewards() const { return rewards_; }
  // The reward `name`; throws cada::Error listing the names when absent.
  std::shared_ptr<Reward> get(const std::string& name) const;

  // Every reward on every sample, in config order; each reward is computed once (a composite
  // combines the values of its terms). Throws cada::Error when a reward that needs_prompt()
  // meets a sample without a prompt, naming the reward and the sample index.
  std::vector<std::pair<std::string, Values>> score(const std::vector<Sample>& samples);

 private:
  std::vector<std::shared_ptr<Reward>> rewards_;  // config order
  std::vector<size_t> order_;                     // dependencies first
};

// ---- helpers the built-in types share (public so that other layers compute the same values)

// The text a content reward reads: the whole response ("response") or parse_response's
// answer ("answer"; the whole stripped text when the response has no structure).
std::string select_text(const std::string& response, const std::string& on, const std::string& style);

// DAPO's soft overlong punishment for a response of `len` units with max length L = max_len
// and cache C = cache (0 < C <= L): 0 when len <= L - C; ((L - C) - len) / C when
// L - C < len <= L; -1 when len > L.
double overlong_penalty(int64_t len, int64_t max_len, int64_t cache);

}  // namespace cada::reward
