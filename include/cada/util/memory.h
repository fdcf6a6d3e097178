// How much memory a request may take, checked before allocating: large sizes from configs or
// inputs become one sentence naming the option to lower, instead of an allocator failure (or
// the OOM killer) minutes later.
#pragma once

#include <cstdint>
#include <string>

namespace cada::util {

// Host memory this process can still use, in bytes: MemAvailable from /proc/meminfo, bounded by
// the cgroup's limit (memory.max, v2) minus its usage where one is set; -1 when unknown.
int64_t host_available_bytes();

// "1.5 GiB", "512 MiB", "3.2 TiB".
std::string format_bytes(double bytes);

// Throws cada::Error when `bytes` exceed `available` (>= 0): "<what> needs 1.5 TiB, more than the
// 22 GiB available; lower <remedy>". Nothing is checked when available < 0 (unknown).
void check_fits(double bytes, int64_t available, const std::string& what, const std::string& remedy);

}  // namespace cada::util
