#include "cada/util/signals.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

namespace cada::util {

namespace {

std::atomic<int> g_signal{0};

void write_err(const char* s) {
  ssize_t rc = ::write(STDERR_FILENO, s, std::strlen(s));
  (void)rc;
}

extern "C" void on_stop_signal(int sig) {
  int expected = 0;
  if (g_signal.compare_exchange_strong(expected, sig)) {
    write_err(sig == SIGINT ? "\ncada: SIGINT received: finishing the current step and writing a checkpoint "
                              "(send it again to exit at once)\n"
                            : "\ncada: SIGTERM received: finishing the current step and writing a checkpoint "
                              "(send it again to exit at once)\n");
    return;
  }
  write_err("\ncada: second signal: exiting without a checkpoint\n");
  ::_exit(128 + sig);
}

}  // namespace

void install_stop_handlers() {
  static std::atomic<bool> done{false};
  if (done.exchange(true)) return;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

int stop_signal() { return g_signal.load(); }

std::string signal_name(int sig) {
  if (sig == SIGINT) return "SIGINT";
  if (sig == SIGTERM) return "SIGTERM";
  return "signal " + std::to_string(sig);
}

}  // namespace cada::util
