// log.cpp — see log.hpp. The JSON sink writes one object per line; a message that is itself a
// JSON object (a decision record) is merged into it instead of being quoted as a string.
#include "common/log.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <syslog.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

#include "common/strings.hpp"

namespace saslguard {

[[noreturn]] void fatal(const std::string& what) {
  spdlog::critical("fatal: {} (aborting)", what);
  spdlog::shutdown();
  std::fprintf(stderr, "saslguard: fatal: %s\n", what.c_str());
  std::abort();
}

namespace log {
namespace {

std::atomic<bool> g_json_mode{false};

class JsonLineSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count();
    std::string_view payload(msg.payload.data(), msg.payload.size());
    const auto level = spdlog::level::to_string_view(msg.level);
    std::string line = fmt::format(R"({{"ts_ms":{},"level":"{}",)", ms,
                                   std::string_view(level.data(), level.size()));
    if (payload.size() >= 2 && payload.front() == '{' && payload.back() == '}') {
      line.append(payload.substr(1));
    } else {
      line += "\"msg\":\"" + jsonEscape(payload) + "\"}";
    }
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }
};

Result<int> facilityFromName(std::string_view name) {
  static constexpr std::pair<std::string_view, int> kFacilities[] = {
      {"mail", LOG_MAIL},     {"daemon", LOG_DAEMON}, {"user", LOG_USER},
      {"auth", LOG_AUTH},     {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1},
      {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4},
      {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7}};
  for (const auto& [n, f] : kFacilities) {
    if (n == name) return f;
  }
  return fail("unknown syslog facility '" + std::string(name) + "'");
}

}  // namespace

Result<void> setLevel(std::string_view level) {
  const auto parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") {
    return fail("unknown log level '" + std::string(level) + "'");
  }
  spdlog::set_level(parsed);
  return {};
}

Result<void> init(const LogOptions& options) {
  std::shared_ptr<spdlog::logger> logger;
  if (options.sink == "stderr") {
    logger = std::make_shared<spdlog::logger>("saslguard",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  } else if (options.sink == "syslog") {
    auto facility = facilityFromName(options.syslog_facility);
    if (!facility) return tl::unexpected(facility.error());
    logger = std::make_shared<spdlog::logger>(
        "saslguard", std::make_shared<spdlog::sinks::syslog_sink_mt>(options.syslog_ident, LOG_PID,
                                                                     *facility, true));
    logger->set_pattern("%v");
  } else if (options.sink == "json") {
    logger = std::make_shared<spdlog::logger>("saslguard", std::make_shared<JsonLineSink>());
  } else {
    return fail("unknown log sink '" + options.sink + "' (stderr, syslog or json)");
  }
  g_json_mode = options.sink == "json";
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  return setLevel(options.level);
}

bool jsonMode() {
  return g_json_mode.load(std::memory_order_relaxed);
}

bool peerWarningAllowed() {
  static std::atomic<std::int64_t> window_second{0};  // the process-wide log budget
  static std::atomic<int> used{0};
  constexpr int kPerSecond = 20;
  const auto second = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  auto current = window_second.load(std::memory_order_relaxed);
  if (current != second && window_second.compare_exchange_strong(current, second)) {
    used.store(0, std::memory_order_relaxed);
  }
  return used.fetch_add(1, std::memory_order_relaxed) < kPerSecond;
}

}  // namespace log
}  // namespace saslguard
