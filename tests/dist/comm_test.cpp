// The c10d communicator with two real processes on loopback (Gloo): each test starts a peer
// process (two_process.h), both form a group through a TCPStore, and the peer's checks come back
// as its exit code.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

#include "cada/dist/comm.h"
#include "cada/util/error.h"
#include "two_process.h"

namespace cada::dist {
namespace {


TEST(Dist, ShardCoversEveryItemOnce) {
  for (int64_t n : {0, 1, 5, 8, 13})
    for (int w : {1, 2, 3, 4}) {
      int64_t next = 0;
      for (int r = 0; r < w; ++r) {
        auto s = shard(n, r, w);
        EXPECT_EQ(s.begin, next);
        EXPECT_GE(s.size(), n / w);
        EXPECT_LE(s.size(), n / w + 1);
        next = s.end;
      }
      EXPECT_EQ(next, n);
    }
}

TEST(Dist, SingleProcessCollectivesAreIdentity) {
  auto& c = init(LaunchInfo{}, Options{});
  EXPECT_EQ(c.world(), 1);
  std::vector<at::Tensor> t{at::arange(4, at::kFloat)};
  c.allreduce_sum(t);
  EXPECT_TRUE(t[0].equal(at::arange(4, at::kFloat)));
  EXPECT_EQ(c.allgather("x"), std::vector<std::string>{"x"});
  EXPECT_EQ(allreduce_sum(c, 2.5), 2.5);
}

TEST(Dist, TwoProcessCollectives) {
  int st = 0;
  const int rc = run_pair(
      [](int rank, int port) {
        auto& c = init(launch(rank, 2, port), opts(30));
        ASSERT_EQ(c.world(), 2);
        ASSERT_EQ(c.rank(), rank);
        EXPECT_EQ(c.backend(), "gloo");
        // sum
        std::vector<at::Tensor> t{at::full({3}, rank + 1.0, at::kFloat), at::full({2, 2}, 10.0 * rank, at::kDouble)};
        c.allreduce_sum(t);
        EXPECT_TRUE(t[0].equal(at::full({3}, 3.0, at::kFloat)));
        EXPECT_TRUE(t[1].equal(at::full({2, 2}, 10.0, at::kDouble)));
        EXPECT_DOUBLE_EQ(allreduce_sum(c, 0.25 + rank), 1.5);
        // broadcast from rank 1
        auto b = at::full({4}, static_cast<float>(rank), at::kFloat);
        c.broadcast(b, 1);
        EXPECT_TRUE(b.equal(at::ones({4}, at::kFloat)));
        // allgather of different lengths, in rank order
        auto g = c.allgather(rank == 0 ? std::string("") : std::string("second\0rank", 11));
        ASSERT_EQ(g.size(), 2u);
        EXPECT_EQ(g[0], "");
        EXPECT_EQ(g[1], std::string("second\0rank", 11));
        check_same(c, "same", "value");
        // gradients in several small buckets, mixed dtypes, one undefined gradient
        std::vector<at::Tensor> ps{at::zeros({5}, at::kFloat).requires_grad_(), at::zeros({3, 3}, at::kFloat).requires_grad_(),
                                   at::zeros({2}, at::kDouble).requires_grad_(), at::zeros({7}, at::kFloat).requires_grad_()};
        for (size_t i = 0; i < ps.size(); ++i)
          if (!(rank == 1 && i == 3)) ps[i].mutable_grad() = at::full_like(ps[i], (rank + 1) * (i + 1.0));
        allreduce_gradients(c, ps, /*bucket_mb=*/40.0 / (1024 * 1024));
        for (size_t i = 0; i < ps.size(); ++i) {
          const double want = i == 3 ? 4.0 : 3.0 * (i + 1);
          EXPECT_TRUE(ps[i].grad().equal(at::full_like(ps[i], want))) << "param " << i << " on rank " << rank;
        }
        c.barrier();
      },
      &st);
  EXPECT_EQ(rc, 0);
}

TEST(Dist, DifferentValuesAreNamed) {
  int st = 0;
  run_pair(
      [](int rank, int port) {
        auto& c = init(launch(rank, 2, port), opts(30));
        try {
          check_same(c, rank == 0 ? "a" : "b", "config");
          ADD_FAILURE() << "no error";
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("rank 1 has a different config"), std::string::npos) << e.what();
        }
      },
      &st);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST(Dist, DivergedParametersAreCaught) {
  int st = 0;
  run_pair(
      [](int rank, int port) {
        auto& c = init(launch(rank, 2, port), opts(30));
        std::vector<at::Tensor> same{at::arange(6, at::kFloat), at::ones({2, 2})};
        check_parameters_agree(c, same);  // equal: no error
        std::vector<at::Tensor> differ{at::arange(6, at::kFloat), at::ones({2, 2})};
        if (rank == 1) differ[1][0][1] = 1.0f + 1e-7f;  // one ulp-sized change in the second tensor
        try {
          check_parameters_agree(c, differ);
          ADD_FAILURE() << "diverged parameters passed";
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("rank 1 holds different parameters than rank 0 (tensor 1)"),
                    std::string::npos) << e.what();
        }
      },
      &st);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST(Dist, DeadPeerIsAClearErrorNotAHang) {
  int st = 0;
  run_pair(
      [](int rank, int port) {
        auto& c = init(launch(rank, 2, port), opts(10));
        std::vector<at::Tensor> t{at::ones({8})};
        c.allreduce_sum(t);  // both alive
        if (rank == 1) std::_Exit(0);  // dies without a word
        auto t0 = std::chrono::steady_clock::now();
        try {
          c.allreduce_sum(t);
          ADD_FAILURE() << "the collective with a dead peer returned";
        } catch (const Error& e) {
          const std::string msg = e.what();
          EXPECT_NE(msg.find("rank 0 of 2: allreduce failed"), std::string::npos) << msg;
          EXPECT_NE(msg.find("--resume"), std::string::npos) << msg;
        }
        EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 30.0);
      },
      &st);
}

TEST(Dist, HungPeerTimesOut) {
  int st = 0;
  run_pair(
      [](int rank, int port) {
        auto& c = init(launch(rank, 2, port), opts(3));
        if (rank == 1) {
          std::this_thread::sleep_for(std::chrono::seconds(10));  // alive but silent
          std::_Exit(0);
        }
        auto t0 = std::chrono::steady_clock::now();
        std::vector<at::Tensor> t{at::ones({8})};
        EXPECT_THROW(c.allreduce_sum(t), Error);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        EXPECT_GE(secs, 2.0);
        EXPECT_LT(secs, 8.0);
      },
      &st);
}

TEST(Dist, LaunchFromEnvironment) {
  ::setenv("RANK", "1", 1);
  ::setenv("WORLD_SIZE", "4", 1);
  ::setenv("LOCAL_RANK", "1", 1);
  ::setenv("LOCAL_WORLD_SIZE", "2", 1);
  ::setenv("MASTER_ADDR", "10.0.0.7", 1);
  ::setenv("MASTER_PORT", "1234", 1);
  auto li = launch_from_env();
  EXPECT_EQ(li.launcher, "torchrun");
  EXPECT_EQ(li.rank, 1);
  EXPECT_EQ(li.world, 4);
  EXPECT_EQ(li.local_world, 2);
  EXPECT_EQ(li.master_addr, "10.0.0.7");
  EXPECT_EQ(li.master_port, 1234);
  for (const char* v : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"}) ::unsetenv(v);
  ::setenv("OMPI_COMM_WORLD_RANK", "3", 1);
  ::setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
  ::setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);
  ::setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2", 1);
  li = launch_from_env();
  EXPECT_EQ(li.launcher, "mpirun");
  EXPECT_EQ(li.rank, 3);
  EXPECT_EQ(li.local_rank, 1);
  for (const char* v : {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
                        "OMPI_COMM_WORLD_LOCAL_SIZE", "MASTER_ADDR"})
    ::unsetenv(v);
  ::setenv("SLURM_PROCID", "5", 1);
  ::setenv("SLURM_NTASKS", "8", 1);
  ::setenv("SLURM_LOCALID", "1", 1);
  ::setenv("SLURM_NTASKS_PER_NODE", "4(x2)", 1);
  ::setenv("SLURM_LAUNCH_NODE_IPADDR", "10.1.2.3", 1);
  li = launch_from_env();
  EXPECT_EQ(li.launcher, "slurm");
  EXPECT_EQ(li.rank, 5);
  EXPECT_EQ(li.world, 8);
  EXPECT_EQ(li.local_world, 4);
  EXPECT_EQ(li.master_addr, "10.1.2.3");
  ::setenv("SLURM_PROCID", "x", 1);
  try {
    launch_from_env();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("SLURM_PROCID='x'"), std::string::npos) << e.what();
  }
  for (const char* v : {"SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE",
                        "SLURM_LAUNCH_NODE_IPADDR", "MASTER_PORT"})
    ::unsetenv(v);
  EXPECT_EQ(launch_from_env().launcher, "single");
}

}  // namespace
}  // namespace cada::dist
