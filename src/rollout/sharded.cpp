#include "cada/rollout/sharded.h"

#include "cada/util/error.h"

namespace cada::rollout {

namespace {

nlohmann::json to_json(const std::vector<Completion>& cs) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& c : cs)
    a.push_back({{"ids", c.ids}, {"logprobs", c.logprobs}, {"text", c.text}, {"finish_reason", c.finish_reason}});
  return a;
}

std::vector<Completion> from_json(const nlohmann::json& a) {
  std::vector<Completion> cs;
  for (const auto& j : a) {
    Completion c;
    c.ids = j.at("ids").get<std::vector<int32_t>>();
    c.logprobs = j.at("logprobs").get<std::vector<float>>();
    c.text = j.at("text").get<std::string>();
    c.finish_reason = j.at("finish_reason").get<std::string>();
    cs.push_back(std::move(c));
  }
  return cs;
}

}  // namespace

std::vector<nlohmann::json> gather_shards(dist::Comm& comm, const std::vector<nlohmann::json>& mine, int64_t n) {
  if (comm.world() == 1) return mine;
  const auto parts = dist::allgather_json(comm, nlohmann::json(mine));
  std::vector<nlohmann::json> all;
  all.reserve(static_cast<size_t>(n));
  for (int q = 0; q < comm.world(); ++q) {
    const auto range = dist::shard(n, q, comm.world());
    CADA_CHECK(parts[q].is_array() && static_cast<int64_t>(parts[q].size()) == range.size(), "data parallel: rank ", q,
               " sent ", parts[q].size(), " results for its ", range.size(), " items");
    for (const auto& item : parts[q]) all.push_back(item);
  }
  return all;
}

std::vector<std::vector<Completion>> generate_sharded(Generator& gen, dist::Comm& comm,
                                                      const std::vector<Request>& requests,
                                                      const std::function<void(int64_t)>& on_tokens) {
  if (comm.world() == 1) return gen.generate(requests, on_tokens);
  const int64_t n = static_cast<int64_t>(requests.size());
  const auto mine = dist::shard(n, comm.rank(), comm.world());
  std::vector<Request> local(requests.begin() + mine.begin, requests.begin() + mine.end);
  std::vector<nlohmann::json> out;
  if (!local.empty())
    for (const auto& cs : gen.generate(local, on_tokens)) out.push_back(to_json(cs));
  std::vector<std::vector<Completion>> all;
  for (const auto& j : gather_shards(comm, out, n)) all.push_back(from_json(j));
  return all;
}

}  // namespace cada::rollout
