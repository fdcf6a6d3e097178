// Two real processes on loopback for data-parallel tests: the test forks a peer (rank 1) before
// libtorch starts any threads, both form a Gloo group through a TCPStore, and the child's checks
// come back as its exit code. Shared by the layers' test binaries (include "../dist/two_process.h").
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>

#include "cada/dist/comm.h"

namespace cada::dist {
namespace {

int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

LaunchInfo launch(int rank, int world, int port) {
  LaunchInfo li;
  li.rank = rank;
  li.world = world;
  li.local_rank = rank;
  li.local_world = world;
  li.master_port = port;
  li.launcher = "test";
  return li;
}

// Runs body(rank) in a forked rank 1 and here as rank 0; returns the child's exit status.
// A forked child must not inherit libtorch or Gloo threads, so each test that forks needs a
// fresh process: ctest runs one test per process; a direct run of the binary skips the rest.
bool first_fork() {
  static int forks = 0;
  return forks++ == 0;
}
#define CADA_NEEDS_FRESH_PROCESS() \
  if (!::cada::dist::first_fork()) GTEST_SKIP() << "run each two-process test in its own process (ctest does)"

int run_pair(const std::function<void(int rank, int port)>& body, int* child_status) {
  const int port = free_port();
  pid_t pid = ::fork();
  if (pid == 0) {
    int rc = 0;
    try {
      body(1, port);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "rank 1: %s\n", e.what());
      rc = 3;
    }
    if (::testing::Test::HasFailure()) rc = 2;
    std::_Exit(rc);
  }
  body(0, port);
  int st = 0;
  ::waitpid(pid, &st, 0);
  *child_status = st;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

Options opts(double timeout) {
  Options o;
  o.timeout_s = timeout;
  return o;
}

}  // namespace
}  // namespace cada::dist
