// What both schedulers of the Generator (static batches, continuous batching) share about one
// sample being generated: its stop ids, the test that ends it, the final text. Internal header.
#pragma once

#include <string>
#include <vector>

#include "cada/rollout/generator.h"

namespace cada::rollout::detail {

// First occurrence of any stop string in text, or npos.
size_t find_stop(const std::string& text, const std::vector<std::string>& stops);

// The ids that end a sample: the tokenizer's stop ids (else config.json's EOS ids), then the
// request's own; none but the request's own with ignore_eos.
std::vector<int32_t> stop_ids(const SamplingParams& params, const text::Tokenizer* tok,
                              const std::vector<int64_t>& config_eos);

// Appends a sampled token and its log-prob; true when the sample is now finished (EOS or stop
// token, stop string, max_new_tokens), with finish_reason set.
bool append_token(Completion& c, int32_t token, float logprob, const std::vector<int32_t>& stops,
                  const SamplingParams& params, const text::Tokenizer* tok);

// The final text: decoded with special tokens skipped, cut before the first stop string;
// finish_reason "length" when nothing ended the sample earlier.
void finish_completion(Completion& c, const SamplingParams& params, const text::Tokenizer* tok);

}  // namespace cada::rollout::detail
