// Data-parallel generation, the one place where requests are split over ranks and completions
// gathered back: every rank of `comm` generates its contiguous share of the requests
// (dist::shard) and receives all completions in request order, exactly as one process would
// have generated them (each sample draws from its own random stream, keyed by its request's
// seed and its index, whichever rank and batch it runs in).
#pragma once

#include <functional>
#include <vector>

#include "cada/dist/comm.h"
#include "cada/rollout/generator.h"

namespace cada::rollout {

// One vector of n completions per request, in request order, on every rank. With one process
// this is gen.generate(requests). on_tokens reports this rank's tokens.
std::vector<std::vector<Completion>> generate_sharded(Generator& gen, dist::Comm& comm,
                                                      const std::vector<Request>& requests,
                                                      const std::function<void(int64_t)>& on_tokens = {});

// The same gather for any per-item results: `mine` holds items [shard.begin, shard.end) of n
// (this rank's dist::shard), each as JSON; returns all n in order on every rank.
std::vector<nlohmann::json> gather_shards(dist::Comm& comm, const std::vector<nlohmann::json>& mine, int64_t n);

}  // namespace cada::rollout
