// Data-parallel communication on PyTorch's own distributed engine (c10d).
//
// A small interface over a c10d process group: Gloo for CPU tensors, NCCL for CUDA tensors
// (when libtorch and cada were built with it). The group is formed from the launcher's
// environment (cada/util/launch.h: torchrun, mpirun, srun) through a c10d TCPStore on
// MASTER_ADDR:MASTER_PORT. A single process gets a communicator whose collectives are no-ops,
// so trainers call the same code in both cases and a one-process run is numerically unchanged.
//
// Failure: every collective and the rendezvous time out after `timeout_s` (default 300,
// $CADA_DIST_TIMEOUT); a peer that dies or hangs turns into a cada::Error naming the rank,
// the operation and what to do, instead of a hang.
//
//   auto& comm = cada::dist::init_from_env();       // once per process, before training
//   comm.allreduce_sum(tensors);                    // in place
//   cada::dist::allreduce_gradients(comm, params);  // bucketed sum of .grad()
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "cada/util/launch.h"

namespace cada::dist {

struct Options {
  std::string backend = "auto";  // auto (gloo on CPU, nccl on CUDA) | gloo | nccl
  double timeout_s = 300;        // rendezvous and every collective
  std::string device = "cpu";    // where NCCL collectives run (cuda:N); CPU for Gloo
};

// Options from the environment: CADA_DIST_BACKEND, CADA_DIST_TIMEOUT (seconds).
Options options_from_env();

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  virtual std::string backend() const = 0;
  bool is_main() const { return rank() == 0; }

  // In-place elementwise sum over ranks; all tensors on one device, same shapes on all ranks.
  virtual void allreduce_sum(std::vector<at::Tensor>& tensors) = 0;
  // Rank `root`'s tensor everywhere (in place).
  virtual void broadcast(at::Tensor& tensor, int root) = 0;
  // Every rank's bytes, in rank order.
  virtual std::vector<std::string> allgather(const std::string& bytes) = 0;
  virtual void barrier() = 0;
};

// The process's communicator. The first call forms the group from the environment (a
// single process when no launcher variables are set); later calls return the same one.
// `device` is where this rank computes (cpu, cuda, cuda:N): with a CUDA device and the NCCL
// backend, collectives run there and cuda means cuda:<LOCAL_RANK>.
Comm& init_from_env(const std::string& device = "cpu");
// The communicator formed by init_from_env, or a single-process one when none was formed.
Comm& world();
// Forms a group explicitly (tests, tools). Replaces the process's communicator.
Comm& init(const LaunchInfo& launch, const Options& opts);
// True when this process is one of several.
bool active();

// ---- helpers built on the interface

// Sums the gradients of `params` over ranks, flattened into buckets of about `bucket_mb`
// megabytes per dtype and device; undefined gradients count as zeros (and are created).
void allreduce_gradients(Comm& comm, const std::vector<at::Tensor>& params, double bucket_mb = 25.0);
// Sums doubles over ranks (float64 on the wire, so counts and sums stay exact).
std::vector<double> allreduce_sum(Comm& comm, std::vector<double> values);
double allreduce_sum(Comm& comm, double value);
// Every rank's JSON value, in rank order (sent as MessagePack).
std::vector<nlohmann::json> allgather_json(Comm& comm, const nlohmann::json& value);
// Checks that every rank holds the same value (e.g. a config hash); the message names `what`.
void check_same(Comm& comm, const std::string& value, const std::string& what);

// Checks that every rank holds bitwise the same parameters (per-tensor float64 sums of the
// values and of their squares, compared exactly); names the first tensor that differs.
void check_parameters_agree(Comm& comm, const std::vector<at::Tensor>& params);

// This rank's contiguous share [begin, end) of n items (the first n % world ranks get one more).
struct Range {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
Range shard(int64_t n, int rank, int world);

}  // namespace cada::dist
