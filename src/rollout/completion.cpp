#include "completion.h"

#include <algorithm>

namespace cada::rollout::detail {

size_t find_stop(const std::string& text, const std::vector<std::string>& stops) {
  size_t best = std::string::npos;
  for (const auto& s : stops) {
    if (s.empty()) continue;
    size_t p = text.find(s);
    if (p < best) best = p;
  }
  return best;
}

std::vector<int32_t> stop_ids(const SamplingParams& params, const text::Tokenizer* tok,
                              const std::vector<int64_t>& config_eos) {
  std::vector<int32_t> ids;
  if (!params.ignore_eos && tok) ids = tok->stop_ids;
  if (!params.ignore_eos && !tok)
    for (int64_t e : config_eos) ids.push_back(static_cast<int32_t>(e));
  ids.insert(ids.end(), params.stop_token_ids.begin(), params.stop_token_ids.end());
  return ids;
}

bool append_token(Completion& c, int32_t token, float logprob, const std::vector<int32_t>& stops,
                  const SamplingParams& params, const text::Tokenizer* tok) {
  c.ids.push_back(token);
  c.logprobs.push_back(logprob);
  if (std::find(stops.begin(), stops.end(), token) != stops.end()) {
    c.finish_reason = "stop";
  } else if (!params.stop.empty() && find_stop(tok->decode(c.ids, true), params.stop) != std::string::npos) {
    c.finish_reason = "stop";
  } else if (static_cast<int64_t>(c.ids.size()) >= params.max_new_tokens) {
    c.finish_reason = "length";
  } else {
    return false;
  }
  return true;
}

void finish_completion(Completion& c, const SamplingParams& params, const text::Tokenizer* tok) {
  if (c.finish_reason.empty()) c.finish_reason = "length";
  if (!tok) return;
  c.text = tok->decode(c.ids, /*skip_special_tokens=*/true);
  size_t cut = find_stop(c.text, params.stop);
  if (cut != std::string::npos) c.text.resize(cut);
}

}  // namespace cada::rollout::detail
