#include "cada/rollout/sampling.h"

namespace cada::rollout {

std::vector<std::string> SamplingConfig::problems(const std::string& section) const {
  return config::range_problems(*this, section);
}

SamplingParams SamplingConfig::params(int64_t max_new_tokens) const {
  SamplingParams sp;
  sp.temperature = temperature;
  sp.top_p = top_p;
  sp.top_k = top_k;
  sp.min_p = min_p;
  sp.repetition_penalty = repetition_penalty;
  sp.stop = stop;
  sp.max_new_tokens = max_new_tokens;
  return sp;
}

nlohmann::json SamplingConfig::to_json() const {
  return {{"temperature", temperature}, {"top_p", top_p}, {"top_k", top_k},
          {"min_p", min_p}, {"repetition_penalty", repetition_penalty}, {"stop", stop}};
}

std::vector<std::string> EngineConfig::problems(const std::string& section) const {
  auto p = config::range_problems(*this, section);
  if (engine != "auto" && engine != "static" && engine != "continuous")
    p.push_back("'" + (section.empty() ? "" : section + ".") + "engine' must be auto, static or continuous, got '" +
                engine + "'");
  return p;
}

GeneratorOptions EngineConfig::options(const std::string& limit_hint) const {
  GeneratorOptions o;
  if (!limit_hint.empty()) o.limit_hint = limit_hint;
  o.max_batch_rows = batch_rows;
  o.engine = parse_engine(engine);
  o.cuda_graphs = cuda_graphs;
  return o;
}

}  // namespace cada::rollout
