// Where this process sits in a multi-process launch, read from the environment that the
// usual launchers set. No communication happens here (that is cada/dist); the model layer
// uses it to split the CPU cores between the processes of one node.
//
//   torchrun --no-python      RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT
//   mpirun (Open MPI)         OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE
//   srun (Slurm)              SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE
//
// The first complete set wins, in that order. MASTER_ADDR / MASTER_PORT are always read from
// the environment (defaults 127.0.0.1 and 29500); under Slurm without MASTER_ADDR the
// launching node's address (SLURM_LAUNCH_NODE_IPADDR) is used.
#pragma once

#include <string>

namespace cada {

struct LaunchInfo {
  int rank = 0, world = 1;            // global rank and number of processes
  int local_rank = 0, local_world = 1;  // within this node
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string launcher = "single";    // single | torchrun | mpirun | slurm
  bool distributed() const { return world > 1; }
};

// Reads the environment; a malformed variable is an error naming it.
LaunchInfo launch_from_env();

// Marks this process as rank `rank` of `world`: log lines carry "r<rank>", and ranks other
// than 0 print warnings and errors only, and no progress bars.
void set_log_rank(int rank, int world);
// True on rank 0 (and in a single process): the rank that prints progress and writes files.
bool is_log_rank();

}  // namespace cada
