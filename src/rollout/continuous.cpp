#include "cada/rollout/continuous.h"

#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <deque>

#include "completion.h"
#include "cada/util/clock.h"
#include "cada/util/error.h"

namespace cada::rollout {

namespace {

using util::Clock;
using util::seconds_since;

int64_t pow2_at_least(int64_t n) {
  int64_t b = 1;
  while (b < n) b *= 2;
  return b;
}

constexpr int64_t kLengthBucket = 256;  // cache positions attended to grow in steps of this

}  // namespace

// One generate() call: the rows, which slot holds which row, and the steps in flight.
class ContinuousBatcher::Run {
 public:
  Run(ContinuousBatcher& owner, DecodeSlots& slots, const std::vector<Request>& requests,
      const GenerateHooks& hooks, GenerationStats& stats)
      : owner_(owner), slots_(slots), requests_(requests), hooks_(hooks), stats_(stats),
        slot_row_(slots.slots(), -1), slot_pos_(slots.slots(), 0) {
    const auto& cfg = owner.model_.config();
    bool any_sampled = false, any_truncation = false;
    for (size_t i = 0; i < requests.size(); ++i) {
      const auto& p = requests[i].params;
      for (int64_t j = 0; j < requests[i].n; ++j) {
        Row row;
        row.request = i;
        row.sample = j;
        row.stops = detail::stop_ids(p, owner.tok_, cfg.eos_token_ids);
        rows_.push_back(std::move(row));
      }
      any_sampled |= p.temperature > 0;
      any_truncation |= p.top_k > 0 || p.top_p < 1 || p.min_p > 0;
      kind_.penalty |= p.repetition_penalty != 1.0f;
    }
    kind_.sampling = !any_sampled      ? kernels::SamplingKind::kGreedy
                     : any_truncation ? kernels::SamplingKind::kTruncated
                                      : kernels::SamplingKind::kPlain;
    lag_ = slots.uses_graphs() ? 1 : 0;
    copies_.resize(lag_ + 2);
  }

  std::vector<std::vector<Completion>> run() {
    refill();
    while (busy_ > 0 || !in_flight_.empty()) {
      if (busy_ > 0) launch();
      const size_t keep = busy_ > 0 ? lag_ : 0;
      while (in_flight_.size() > keep) collect();
      if (next_waiting_ < rows_.size()) {
        if (refill_due()) refill();
      } else if (busy_ > 0 && pow2_at_least(busy_) < bucket()) {
        while (!in_flight_.empty()) collect();
        compact();
      }
    }
    return finish();
  }

 private:
  struct Row {
    size_t request;
    int64_t sample;
    std::vector<int32_t> stops;
    bool done = false;
    Completion c;
  };
  struct Step {
    size_t copy;                // index into copies_
    std::vector<int64_t> rows;  // the row each slot held at launch (-1: none)
  };

  // Slots [0, bucket()) cover every busy slot.
  int64_t bucket() const {
    int64_t top = 0;
    for (int64_t s = 0; s < static_cast<int64_t>(slot_row_.size()); ++s)
      if (slot_row_[s] >= 0) top = s + 1;
    return std::min<int64_t>(pow2_at_least(std::max<int64_t>(top, 1)), slots_.slots());
  }

  // A prefill costs a host round trip and the samples of a request share one: refill once the
  // free slots hold the next request's remaining samples (or half the slots, for groups larger
  // than that), or when nothing is decoding.
  bool refill_due() const {
    const int64_t free = slots_.slots() - busy_;
    int64_t group = 0;
    for (size_t r = next_waiting_; r < rows_.size() && rows_[r].request == rows_[next_waiting_].request; ++r) ++group;
    return busy_ == 0 || free >= std::min<int64_t>(group, std::max<int64_t>(1, slots_.slots() / 2));
  }

  // Fills free slots (lowest first) with waiting rows, one prefill per request's rows.
  void refill() {
    while (next_waiting_ < rows_.size()) {
      std::vector<int64_t> free;
      for (int64_t s = 0; s < static_cast<int64_t>(slot_row_.size()); ++s)
        if (slot_row_[s] < 0) free.push_back(s);
      if (free.empty()) return;
      std::vector<const std::vector<int32_t>*> prompts;
      std::vector<std::vector<int64_t>> targets;
      std::vector<SlotSampling> sampling;
      std::vector<size_t> placed;
      for (int64_t s : free) {
        if (next_waiting_ >= rows_.size()) break;
        const size_t r = next_waiting_++;
        const Request& req = requests_[rows_[r].request];
        if (placed.empty() || rows_[placed.back()].request != rows_[r].request) {
          prompts.push_back(&req.prompt_ids);
          targets.emplace_back();
        }
        targets.back().push_back(s);
        const auto& p = req.params;
        sampling.push_back({p.temperature, p.top_k, p.top_p, p.min_p, p.repetition_penalty,
                            kernels::stream_key(req.seed, rows_[r].sample)});
        slot_row_[s] = static_cast<int64_t>(r);
        slot_pos_[s] = static_cast<int64_t>(req.prompt_ids.size());
        placed.push_back(r);
        ++busy_;
      }
      auto t0 = Clock::now();
      auto first = slots_.prefill(prompts, targets, sampling, kind_);
      stats_.prefill_s += seconds_since(t0);
      for (const auto* p : prompts) stats_.prompt_tokens += static_cast<int64_t>(p->size());
      int64_t produced = 0;
      size_t i = 0;
      for (const auto& tg : targets)
        for (int64_t s : tg) {
          accept(s, slot_row_[s], first.tokens[i], first.logprobs[i]);
          ++i;
          ++produced;
        }
      report(produced);
    }
  }

  // One decoding step over the current bucket; its tokens are copied back asynchronously.
  void launch() {
    const int64_t B = bucket();
    int64_t top_pos = 0;
    for (int64_t s = 0; s < B; ++s)
      if (slot_row_[s] >= 0) top_pos = std::max(top_pos, slot_pos_[s]);
    const int64_t cap = slots_.capacity();
    const int64_t L = std::min(cap, (top_pos / kLengthBucket + 1) * kLengthBucket);
    slots_.step(B, L, kind_);
    ++stats_.steps;
    Step st;
    st.copy = next_copy_;
    next_copy_ = (next_copy_ + 1) % copies_.size();
    st.rows.assign(slot_row_.begin(), slot_row_.begin() + B);
    copies_[st.copy].start({slots_.tokens(B), slots_.logprobs(B)});
    for (int64_t s = 0; s < B; ++s)
      if (slot_row_[s] >= 0) slot_pos_[s] = std::min(slot_pos_[s] + 1, cap - 1);
    in_flight_.push_back(std::move(st));
  }

  // Reads the oldest step in flight: appends each live row's token, frees finished rows' slots.
  void collect() {
    Step& st = in_flight_.front();
    auto& copy = copies_[st.copy];
    copy.wait();
    const int64_t* tk = copy.host(0).data_ptr<int64_t>();
    const float* lp = copy.host(1).data_ptr<float>();
    int64_t produced = 0;
    for (int64_t s = 0; s < static_cast<int64_t>(st.rows.size()); ++s) {
      const int64_t r = st.rows[s];
      if (r < 0 || rows_[r].done) continue;
      accept(s, r, tk[s], lp[s]);
      ++produced;
    }
    in_flight_.pop_front();
    report(produced);
  }

  void accept(int64_t slot, int64_t r, int64_t token, float logprob) {
    Row& row = rows_[r];
    const auto& p = requests_[row.request].params;
    const bool done = detail::append_token(row.c, static_cast<int32_t>(token), logprob, row.stops, p, owner_.tok_);
    if (hooks_.on_token) hooks_.on_token(row.request, row.sample, row.c);
    if (done) {
      row.done = true;
      if (slot_row_[slot] == r) {
        slot_row_[slot] = -1;
        --busy_;
      }
    }
  }

  // Moves busy rows from the highest slots into the free lowest ones (nothing in flight).
  void compact() {
    std::vector<int64_t> from, to;
    int64_t lo = 0, hi = static_cast<int64_t>(slot_row_.size()) - 1;
    while (true) {
      while (lo < hi && slot_row_[lo] >= 0) ++lo;
      while (hi > lo && slot_row_[hi] < 0) --hi;
      if (lo >= hi) break;
      from.push_back(hi);
      to.push_back(lo);
      slot_row_[lo] = slot_row_[hi];
      slot_pos_[lo] = slot_pos_[hi];
      slot_row_[hi] = -1;
    }
    slots_.move(from, to);
  }

  void report(int64_t produced) {
    stats_.generated_tokens += produced;
    if (hooks_.on_tokens && produced) hooks_.on_tokens(produced);
  }

  std::vector<std::vector<Completion>> finish() {
    std::vector<std::vector<Completion>> out(requests_.size());
    for (size_t i = 0; i < requests_.size(); ++i) out[i].resize(requests_[i].n);
    for (auto& row : rows_) {
      detail::finish_completion(row.c, requests_[row.request].params, owner_.tok_);
      out[row.request][row.sample] = std::move(row.c);
    }
    return out;
  }

  ContinuousBatcher& owner_;
  DecodeSlots& slots_;
  const std::vector<Request>& requests_;
  const GenerateHooks& hooks_;
  GenerationStats& stats_;
  std::vector<Row> rows_;
  size_t next_waiting_ = 0;
  std::vector<int64_t> slot_row_;  // row held by each slot, -1 when free
  std::vector<int64_t> slot_pos_;  // position each busy slot feeds next
  int64_t busy_ = 0;
  StepKind kind_;
  size_t lag_ = 0;
  std::deque<Step> in_flight_;
  // Pinned buffers reused round-robin (at most lag_ + 1 steps are in flight at once), so a step
  // allocates no host memory and creates no event.
  std::vector<kernels::HostCopy> copies_;
  size_t next_copy_ = 0;
};

ContinuousBatcher::ContinuousBatcher(model::TransformerImpl& model, const text::Tokenizer* tok, int64_t slots,
                                     bool cuda_graphs, int64_t reserve_positions)
    : model_(model), tok_(tok), slots_(slots), cuda_graphs_(cuda_graphs), reserve_positions_(reserve_positions) {
  CADA_CHECK(slots >= 1, "continuous batching needs at least one slot, got ", slots);
}

ContinuousBatcher::~ContinuousBatcher() = default;

DecodeSlots& ContinuousBatcher::slots_for(int64_t capacity) {
  std::vector<const void*> weights;
  for (const auto& p : model_.parameters()) weights.push_back(p.data_ptr());
  if (!decode_ || decode_->capacity() < capacity || weights != weights_) {
    decode_.reset();  // free the old cache first
    // Round up, so that calls of slightly different lengths reuse the slots and their graphs.
    const int64_t cap = (capacity + 63) / 64 * 64;
    decode_ = std::make_unique<DecodeSlots>(model_, slots_, cap, cuda_graphs_);
    weights_ = std::move(weights);
  }
  return *decode_;
}

std::vector<std::vector<Completion>> ContinuousBatcher::generate(const std::vector<Request>& requests,
                                                                 const GenerateHooks& hooks,
                                                                 GenerationStats& stats) {
  c10::InferenceMode guard;
  int64_t capacity = std::max<int64_t>(2, reserve_positions_);
  for (const auto& r : requests)
    capacity = std::max<int64_t>(capacity, static_cast<int64_t>(r.prompt_ids.size()) + r.params.max_new_tokens + 1);
  auto& slots = slots_for(capacity);
  const int64_t graphs_before = slots.graphs_captured(), replays_before = slots.graph_replays();
  auto t0 = Clock::now();
  const double prefill_before = stats.prefill_s;
  Run run(*this, slots, requests, hooks, stats);
  auto out = run.run();
  stats.decode_s += seconds_since(t0) - (stats.prefill_s - prefill_before);
  stats.graphs_captured += slots.graphs_captured() - graphs_before;
  stats.graph_replays += slots.graph_replays() - replays_before;
  return out;
}

}  // namespace cada::rollout
