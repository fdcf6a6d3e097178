#include "cada/rollout/sampling.h"

#include <cmath>
#include <sstream>

namespace cada::rollout {

namespace {
template <class T>
std::string key_problem(const std::string& section, const char* key, const char* expected, T got) {
  std::ostringstream s;
  s << "'" << (section.empty() ? "" : section + ".") << key << "' must be " << expected << ", got " << got;
  return s.str();
}
}  // namespace

std::vector<std::string> SamplingConfig::problems(const std::string& section) const {
  std::vector<std::string> p;
  if (!(temperature >= 0) || !std::isfinite(temperature)) p.push_back(key_problem(section, "temperature", ">= 0 and finite", temperature));
  if (!(top_p > 0 && top_p <= 1)) p.push_back(key_problem(section, "top_p", "in (0, 1]", top_p));
  if (top_k < 0) p.push_back(key_problem(section, "top_k", ">= 0", top_k));
  if (!(min_p >= 0 && min_p <= 1)) p.push_back(key_problem(section, "min_p", "in [0, 1]", min_p));
  if (!(repetition_penalty > 0) || !std::isfinite(repetition_penalty))
    p.push_back(key_problem(section, "repetition_penalty", "positive and finite", repetition_penalty));
  return p;
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
  std::vector<std::string> p;
  if (batch_rows < 1) p.push_back(key_problem(section, "batch_rows", ">= 1", batch_rows));
  if (engine != "auto" && engine != "static" && engine != "continuous")
    p.push_back(key_problem(section, "engine", "auto, static or continuous", "'" + engine + "'"));
  return p;
}

GeneratorOptions EngineConfig::options() const {
  GeneratorOptions o;
  o.max_batch_rows = batch_rows;
  o.engine = parse_engine(engine);
  o.cuda_graphs = cuda_graphs;
  return o;
}

}  // namespace cada::rollout
