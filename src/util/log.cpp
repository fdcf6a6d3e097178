#include "cada/util/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace cada {

namespace {
std::string g_pattern = "[cada] %^%l%$ %v";
bool g_quiet_rank = false;
}  // namespace

void init_logging(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  CADA_CHECK(lvl != spdlog::level::off || level == "off",
             "unknown log level '", level, "' (expected trace, debug, info, warn, error or off)");
  auto logger = spdlog::get("cada");
  if (!logger) logger = spdlog::stderr_color_mt("cada");
  logger->set_pattern(g_pattern);
  logger->set_level(g_quiet_rank && lvl < spdlog::level::warn ? spdlog::level::warn : lvl);
  spdlog::set_default_logger(logger);
}


namespace detail {
void set_log_rank_tag(int rank, int world) {
  g_pattern = world > 1 ? "[cada r" + std::to_string(rank) + "] %^%l%$ %v" : "[cada] %^%l%$ %v";
  g_quiet_rank = rank != 0;
  if (auto logger = spdlog::get("cada")) {
    logger->set_pattern(g_pattern);
    if (g_quiet_rank && logger->level() < spdlog::level::warn) logger->set_level(spdlog::level::warn);
  }
}
}  // namespace detail

namespace log {
void debug(const std::string& msg) { spdlog::debug("{}", msg); }
void info(const std::string& msg) { spdlog::info("{}", msg); }
void warn(const std::string& msg) { spdlog::warn("{}", msg); }
void error(const std::string& msg) { spdlog::error("{}", msg); }
}  // namespace log

}  // namespace cada
