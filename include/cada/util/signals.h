// SIGINT (Ctrl-C) and SIGTERM (Slurm preemption, `kill`) during a training run: the first signal
// asks the run to stop at its next safe point (a trainer finishes the current step, writes a
// checkpoint and exits 130 or 143 with a line saying how to resume); a second one exits at once.
#pragma once

#include <string>

#include "cada/util/error.h"

namespace cada {

// Thrown by a trainer that stopped on a signal after writing its checkpoint; main() prints the
// message and exits with exit_code() (128 + the signal).
class Interrupted : public Error {
 public:
  Interrupted(const std::string& msg, int exit_code) : Error(msg), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

namespace util {

// Installs the handlers (idempotent). Before this, SIGINT and SIGTERM kill as usual.
void install_stop_handlers();
// What the handlers print for the first and the second signal, e.g. ("draining requests in
// flight", "exiting at once"); string literals (they are read inside the signal handler).
// Default: the trainers' "finishing the current step and writing a checkpoint".
void set_stop_messages(const char* first, const char* second);
// The signal that asked to stop (SIGINT or SIGTERM), or 0.
int stop_signal();
inline bool stop_requested() { return stop_signal() != 0; }
// "SIGTERM" / "SIGINT".
std::string signal_name(int sig);

}  // namespace util
}  // namespace cada
