// Wall-clock intervals on the monotonic clock: one definition for every stage's timings.
#pragma once

#include <chrono>

namespace cada::util {

using Clock = std::chrono::steady_clock;

// Seconds from t to now.
inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace cada::util
