#include "cada/util/launch.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "cada/util/error.h"

namespace cada {

namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : nullptr;
}

int env_int(const char* name, int lo) {
  const char* v = env(name);
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  CADA_CHECK(end && *end == '\0' && x >= lo && x < (1L << 30), "environment variable ", name, "='", v,
             "' is not an integer >= ", lo);
  return static_cast<int>(x);
}

bool fill(LaunchInfo& li, const char* launcher, const char* rank, const char* world, const char* local_rank,
          const char* local_world) {
  if (!env(rank) || !env(world)) return false;
  li.launcher = launcher;
  li.rank = env_int(rank, 0);
  li.world = env_int(world, 1);
  CADA_CHECK(li.rank < li.world, "environment: ", rank, "=", li.rank, " is not below ", world, "=", li.world);
  li.local_rank = env(local_rank) ? env_int(local_rank, 0) : li.rank;
  li.local_world = local_world && env(local_world) ? env_int(local_world, 1) : li.world;
  CADA_CHECK(li.local_rank < li.local_world, "environment: ", local_rank, "=", li.local_rank, " is not below ",
             local_world ? local_world : world, "=", li.local_world);
  return true;
}

int g_rank = 0;

}  // namespace

LaunchInfo launch_from_env() {
  LaunchInfo li;
  if (!fill(li, "torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE") &&
      !fill(li, "mpirun", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
            "OMPI_COMM_WORLD_LOCAL_SIZE") &&
      !fill(li, "slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", nullptr)) {
    return li;
  }
  if (li.launcher == "slurm" && env("SLURM_NTASKS_PER_NODE")) {
    // Slurm writes e.g. "2(x3)" for heterogeneous layouts: the leading count is this node's.
    li.local_world = std::max(1, std::atoi(env("SLURM_NTASKS_PER_NODE")));
    li.local_rank = std::min(li.local_rank, li.local_world - 1);
  }
  if (env("MASTER_ADDR")) li.master_addr = env("MASTER_ADDR");
  else if (li.launcher == "slurm" && env("SLURM_LAUNCH_NODE_IPADDR")) li.master_addr = env("SLURM_LAUNCH_NODE_IPADDR");
  if (env("MASTER_PORT")) {
    li.master_port = env_int("MASTER_PORT", 1);
    CADA_CHECK(li.master_port < 65536, "environment variable MASTER_PORT=", li.master_port, " is not a TCP port");
  }
  return li;
}

bool is_log_rank() { return g_rank == 0; }

namespace detail {
void set_log_rank_tag(int rank, int world);  // src/util/log.cpp
}

void set_log_rank(int rank, int world) {
  g_rank = rank;
  detail::set_log_rank_tag(rank, world);
}

}  // namespace cada
