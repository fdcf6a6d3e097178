// The static state of continuous batching: a fixed set of decoding slots, each holding one
// sequence's KV cache rows (preallocated, `capacity` positions), its position, its last token and
// its sampling settings, all in device tensors whose addresses never change. A decoding step over
// slots [0, B) is therefore the same device work every time for a given (B, L, kind), and on CUDA
// it is recorded once as a graph and replayed with a single launch; sampling (counter-based
// random numbers, temperature / top-k / top-p / min-p, repetition penalty) runs inside it, so the
// host never waits for a token before launching the next step.
//
// Unlike the static batches of the Generator, every slot has its own position: prompts are not
// padded to a common length, and a slot can take a new prompt while its neighbours keep decoding.
// Shapes: S slots, B active bucket (B <= S), L attended cache positions, C hidden, H heads,
// Hk kv heads, D head_dim, V vocab.
#pragma once

#include <cstdint>
#include <vector>

#include "cada/kernels/device_graph.h"
#include "cada/kernels/ops.h"
#include "cada/model/transformer.h"

namespace cada::rollout {

// Sampling settings of the sequence in one slot.
struct SlotSampling {
  float temperature = 1.0f;         // 0 = greedy
  int64_t top_k = 0;                // 0 = off
  float top_p = 1.0f;               // 1 = off
  float min_p = 0.0f;               // 0 = off
  float repetition_penalty = 1.0f;  // 1 = off
  int64_t stream_key = 0;           // kernels::stream_key(seed, sample index)
};

// What every slot's sampling needs, fixed for a whole generate() call and known on the host.
struct StepKind {
  kernels::SamplingKind sampling = kernels::SamplingKind::kTruncated;
  bool penalty = false;  // some row has a repetition penalty != 1
};

class DecodeSlots {
 public:
  // S = slots sequences of up to `capacity` positions, in the dtype and on the device of the
  // model's weights. cuda_graphs: record steps as CUDA graphs (ignored off CUDA).
  DecodeSlots(model::TransformerImpl& model, int64_t slots, int64_t capacity, bool cuda_graphs);

  int64_t slots() const { return slots_; }
  int64_t capacity() const { return capacity_; }

  // Prefills prompts[p] once and places it in every slot of targets[p] (the samples of a group
  // share one prefill), with sampling[i] for the i-th target slot (targets flattened in order);
  // samples each slot's first token. Returns the first tokens and their log-probs in that order.
  // Prompts are prefilled in chunks of at most prefill_tokens padded tokens.
  struct FirstTokens {
    std::vector<int64_t> tokens;
    std::vector<float> logprobs;
  };
  FirstTokens prefill(const std::vector<const std::vector<int32_t>*>& prompts,
                      const std::vector<std::vector<int64_t>>& targets, const std::vector<SlotSampling>& sampling,
                      StepKind kind, int64_t prefill_tokens = 16384);

  // One decoding step of slots [0, B): every slot's position must be below L <= capacity. Feeds
  // each slot's last token at its position, samples the next one into tokens() / logprobs(),
  // and advances the slot (position and counter + 1). Slots that hold no sequence compute
  // garbage that nobody reads. A CUDA graph per (B, L, kind) when enabled, else eager.
  void step(int64_t B, int64_t L, StepKind kind);
  at::Tensor tokens(int64_t B) const { return out_tokens_.narrow(0, 0, B); }      // (B) int64
  at::Tensor logprobs(int64_t B) const { return out_logprobs_.narrow(0, 0, B); }  // (B) float32

  // Moves the sequences of slots `from` to slots `to` (cache rows, position, sampling).
  void move(const std::vector<int64_t>& from, const std::vector<int64_t>& to);

  int64_t graphs_captured() const { return static_cast<int64_t>(graphs_.size()); }
  int64_t graph_replays() const { return replays_; }
  bool uses_graphs() const { return use_graphs_; }

  // The decoding step's logits (B, V) float32 for slots [0, B), writing their keys and values at
  // their positions, without sampling or advancing (tests compare it with the model's forward).
  at::Tensor forward(int64_t B, int64_t L);

 private:
  // Per-slot sampling state, as views of rows (narrow or index_select) of the slot tensors.
  struct Rows {
    at::Tensor temperature, inv_temperature, top_k, top_p, min_p, penalty, keys, counters, seen;
  };
  Rows rows(int64_t B) const;
  Rows rows(const at::Tensor& index) const;
  // Samples one token per row of logits (R, V) float32 (penalised in place); returns
  // (tokens (R) int64, log-probs (R) float32 under the tempered, unpenalised distribution).
  std::pair<at::Tensor, at::Tensor> sample(at::Tensor logits, const Rows& r, StepKind kind) const;
  void run_step(int64_t B, int64_t L, StepKind kind);
  void prefill_chunk(const std::vector<const std::vector<int32_t>*>& prompts,
                     const std::vector<std::vector<int64_t>>& targets, const std::vector<SlotSampling>& sampling,
                     StepKind kind, FirstTokens& out);
  std::vector<at::Tensor*> slot_state();

  model::TransformerImpl& model_;
  int64_t slots_, capacity_;
  bool use_graphs_;
  at::Device device_;
  at::ScalarType dtype_;
  at::Tensor inv_freq_;                      // (D/2) float32 on the device
  std::vector<at::Tensor> cache_k_, cache_v_;  // per layer (S, Hk, capacity, D)
  at::Tensor ids_, pos_, counters_, keys_;     // (S) int64: last token, its position, tokens sampled, stream key
  at::Tensor temperature_, inv_temperature_, top_p_, min_p_, penalty_;  // (S) float32
  at::Tensor top_k_;                                                     // (S) int64
  at::Tensor seen_;                          // (S, V) bool, tokens seen (repetition penalty), allocated on demand
  at::Tensor out_tokens_, out_logprobs_;     // (S) results of the last step
  kernels::GraphSet graphs_;
  int64_t replays_ = 0;
};

}  // namespace cada::rollout
