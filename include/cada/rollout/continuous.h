// Continuous batching over decoding slots (rollout/decode_slots.h): the Generator's scheduler on
// GPUs. Rows (one per sample of a request) wait in request order; when the free slots can take
// the next request's remaining rows (or half the slots), or nothing is decoding, the next
// waiting rows are prefilled into them (the samples of a request share one prefill of its
// prompt), so a long completion holds one slot, not a whole batch. Each step decodes the
// smallest power-of-two bucket of slots that covers every busy slot, attending to the smallest
// multiple of 256 cache positions that covers every busy slot's position; when no row is waiting
// and the busy rows fit a smaller bucket, they are moved down into it.
//
// On CUDA each step is one graph launch, and the step's tokens come back through a pinned
// asynchronous copy read one step late: the host handles step t's tokens (stop ids, stop
// strings, lengths) while the GPU runs step t + 1. A slot whose sequence ended in step t
// therefore computes one step nobody reads.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "cada/rollout/decode_slots.h"
#include "cada/rollout/generator.h"

namespace cada::rollout {

class ContinuousBatcher {
 public:
  // `slots` sequences decode together at most; cuda_graphs as DecodeSlots; each slot holds at
  // least reserve_positions cache positions.
  ContinuousBatcher(model::TransformerImpl& model, const text::Tokenizer* tok, int64_t slots, bool cuda_graphs,
                    int64_t reserve_positions = 0);
  ~ContinuousBatcher();

  // Requests are validated by the Generator. One vector of n completions per request, in
  // request order; statistics are added to `stats`.
  std::vector<std::vector<Completion>> generate(const std::vector<Request>& requests,
                                                const GenerateHooks& hooks, GenerationStats& stats);

 private:
  class Run;
  // The slots, kept across calls (their CUDA graphs stay valid) unless a call needs longer
  // sequences or the model's weights moved.
  DecodeSlots& slots_for(int64_t capacity);

  model::TransformerImpl& model_;
  const text::Tokenizer* tok_;
  int64_t slots_;
  bool cuda_graphs_;
  int64_t reserve_positions_;
  std::unique_ptr<DecodeSlots> decode_;
  std::vector<const void*> weights_;  // data pointers of the weights the slots' graphs read
};

}  // namespace cada::rollout
