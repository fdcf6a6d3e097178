#include "cada/util/progress.h"

#include <unistd.h>

#include <cstdio>

#include "cada/util/launch.h"

namespace cada {

namespace {
std::string fmt_duration(double s) {
  if (s < 0 || s > 1e7) return "?";
  char buf[32];
  int t = static_cast<int>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%dh%02dm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%dm%02ds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ds", t);
  return buf;
}
}  // namespace

Progress::Progress(std::string label, int64_t total, std::string unit, double interval_s)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), interval_s_(interval_s),
      tty_(isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()), last_print_(start_) {}

Progress::~Progress() {
  if (!finished_ && done_ > 0) finish();
}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::advance(int64_t n, const std::string& extra) {
  done_ += n;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_print_).count();
  if (since >= (tty_ ? 0.2 : interval_s_)) {
    last_print_ = now;
    print(false, extra);
  }
}

void Progress::finish(const std::string& extra) {
  if (finished_) return;
  finished_ = true;
  print(true, extra);
}

void Progress::print(bool final_line, const std::string& extra) {
  if (!is_log_rank()) return;  // in a multi-process run only rank 0 draws bars
  const double el = elapsed_s();
  const double rate = el > 0 ? done_ / el : 0.0;
  std::string line = label_ + " ";
  char buf[160];
  if (total_ > 0) {
    const int width = 24;
    int filled = static_cast<int>(width * std::min<double>(1.0, double(done_) / total_));
    std::string bar(filled, '=');
    if (filled < width) bar += '>' + std::string(width - filled - 1, ' ');
    double eta = rate > 0 ? (total_ - done_) / rate : -1;
    std::snprintf(buf, sizeof buf, "%lld/%lld [%s] %.1f %s/s %s %s", (long long)done_, (long long)total_,
                  bar.c_str(), rate, unit_.c_str(), final_line ? "in" : "ETA",
                  fmt_duration(final_line ? el : eta).c_str());
  } else {
    std::snprintf(buf, sizeof buf, "%lld %s %.1f %s/s %s", (long long)done_, unit_.c_str(), rate, unit_.c_str(),
                  fmt_duration(el).c_str());
  }
  line += buf;
  if (!extra.empty()) line += "  " + extra;
  if (tty_) std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  else std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

}  // namespace cada
