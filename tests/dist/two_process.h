// Two real processes on loopback for data-parallel tests: the test starts its own binary again as
// the peer (rank 1), running only the current test; both form a Gloo group through a TCPStore,
// and the peer's checks come back as its exit code. A fresh process rather than fork(): the test
// binary runs every test in one process, and a child forked after libtorch started its OpenMP or
// Gloo threads can deadlock. Shared by the layers' test binaries (include "../dist/two_process.h").
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "cada/dist/comm.h"
#include "cada/util/launch.h"

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

// The peer's environment: the port of the rendezvous and the descriptor it signals readiness on.
constexpr const char* kPeerPort = "CADA_TEST_PEER_PORT";
constexpr const char* kPeerReadyFd = "CADA_TEST_PEER_READY_FD";
constexpr int kPeerFd = 3;                // the ready pipe's write end in the peer; nothing above is inherited
constexpr int kPeerStartTimeoutMs = 120000;  // a peer that does not reach run_pair by then is killed

// Rank 0's side of a peer: reaps it in any case (killing it when rank 0's half failed early, so
// no peer outlives its test), then puts this process back to one rank, as the next test expects.
struct PeerGuard {
  pid_t pid;
  int status = 0;
  bool reaped = false;
  void wait() {
    ::waitpid(pid, &status, 0);
    reaped = true;
  }
  ~PeerGuard() {
    if (!reaped) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
    init(LaunchInfo{}, Options{});
    set_log_rank(0, 1);
  }
};

// Runs body(1, port) in a second process and body(0, port) here; returns the peer's exit code
// (100 when it did not exit normally) and its raw wait status in *child_status. In the peer (the
// same binary, filtered to the current test, with kPeerPort set), the test runs up to here, then
// body(1) runs and the process exits with 0, 2 (a failed check) or 3 (an exception). Rank 0 starts
// body(0) only once the peer is ready, so the rendezvous timeout does not include its start-up.
// One call per test: the peer runs the test from its start and answers the first call.
int run_pair(const std::function<void(int rank, int port)>& body, int* child_status) {
  if (const char* peer_port = std::getenv(kPeerPort)) {  // this process is rank 1
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);                  // never outlive rank 0
    if (const char* fd = std::getenv(kPeerReadyFd)) {
      const int ready = std::atoi(fd);
      const char byte = 1;
      (void)!::write(ready, &byte, 1);
      ::close(ready);
    }
    int rc = 0;
    try {
      body(1, std::atoi(peer_port));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "rank 1: %s\n", e.what());
      rc = 3;
    }
    if (::testing::Test::HasFailure()) rc = 2;
    std::fflush(nullptr);
    std::_Exit(rc);
  }
  *child_status = -1;
  const int port = free_port();
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return 100;
  }
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string filter = std::string("--gtest_filter=") + test->test_suite_name() + "." + test->name();
  std::string brief = "--gtest_brief=1";
  std::string exe = "/proc/self/exe";
  std::string port_var = std::string(kPeerPort) + "=" + std::to_string(port);
  std::string fd_var = std::string(kPeerReadyFd) + "=" + std::to_string(kPeerFd);
  std::vector<char*> argv{exe.data(), filter.data(), brief.data(), nullptr};
  std::vector<char*> envp;
  for (char** e = environ; *e; ++e) envp.push_back(*e);
  envp.push_back(port_var.data());
  envp.push_back(fd_var.data());
  envp.push_back(nullptr);
  // The peer gets the write end as kPeerFd (dup2 clears close-on-exec) and no other descriptor
  // above it: earlier tests' sockets stay in this process.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, ready[1], kPeerFd);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
  posix_spawn_file_actions_addclosefrom_np(&actions, kPeerFd + 1);
#endif
  pid_t pid = 0;
  const int err = ::posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(ready[1]);
  if (err != 0) {
    ::close(ready[0]);
    ADD_FAILURE() << "cannot start the peer process: " << std::strerror(err);
    return 100;
  }
  PeerGuard peer{pid};
  pollfd pfd{ready[0], POLLIN, 0};
  char byte = 0;
  const bool started = ::poll(&pfd, 1, kPeerStartTimeoutMs) == 1 && ::read(ready[0], &byte, 1) == 1;  // EOF: it ended
  ::close(ready[0]);
  if (started) body(0, port);
  else ADD_FAILURE() << "the peer process did not reach the two-process part of the test";
  if (started) peer.wait();
  *child_status = peer.status;
  return peer.reaped && WIFEXITED(peer.status) ? WEXITSTATUS(peer.status) : 100;
}

Options opts(double timeout) {
  Options o;
  o.timeout_s = timeout;
  return o;
}

}  // namespace
}  // namespace cada::dist
