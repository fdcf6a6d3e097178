#include "cada/util/signals.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

namespace cada::util {

namespace {

std::atomic<int> g_signal{0};
// What the first signal means for this command (set before the handlers run; read in the handler).
std::atomic<const char*> g_first{"finishing the current step and writing a checkpoint"};
std::atomic<const char*> g_second{"exiting without a checkpoint"};

void write_err(const char* s) {
  ssize_t rc = ::write(STDERR_FILENO, s, std::strlen(s));
  (void)rc;
}

extern "C" void on_stop_signal(int sig) {
  int expected = 0;
  if (g_signal.compare_exchange_strong(expected, sig)) {
    write_err(sig == SIGINT ? "\ncada: SIGINT received: " : "\ncada: SIGTERM received: ");
    write_err(g_first.load());
    write_err(" (send it again to exit at once)\n");
    return;
  }
  write_err("\ncada: second signal: ");
  write_err(g_second.load());
  write_err("\n");
  ::_exit(128 + sig);
}

}  // namespace

void set_stop_messages(const char* first, const char* second) {
  g_first.store(first);
  g_second.store(second);
}

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
