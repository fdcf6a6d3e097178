#include "cada/util/memory.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "cada/util/error.h"

namespace cada::util {

namespace {

// The first integer of a file ("max" or a missing file: -1).
int64_t read_int(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  if (!(in >> s) || s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return -1;
  try {
    return std::stoll(s);
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

int64_t host_available_bytes() {
  int64_t avail = -1;
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  std::string unit;
  while (in >> key >> kib) {
    std::getline(in, unit);
    if (key == "MemAvailable:") {
      avail = kib * 1024;
      break;
    }
  }
  const int64_t limit = read_int("/sys/fs/cgroup/memory.max"), used = read_int("/sys/fs/cgroup/memory.current");
  if (limit > 0 && used >= 0) {
    const int64_t left = limit > used ? limit - used : 0;
    avail = avail < 0 ? left : std::min(avail, left);
  }
  return avail;
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024 && u < 6) {
    bytes /= 1024;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, bytes < 10 && u > 0 ? "%.1f %s" : "%.0f %s", bytes, units[u]);
  return buf;
}

void check_fits(double bytes, int64_t available, const std::string& what, const std::string& remedy) {
  if (available < 0 || bytes <= static_cast<double>(available)) return;
  CADA_FAIL(what, " needs ", format_bytes(bytes), ", more than the ", format_bytes(static_cast<double>(available)),
            " available; lower ", remedy);
}

}  // namespace cada::util
