// log.hpp — one logger for the process (spdlog): stderr, syslog (facility configurable) or JSON
// lines on stderr. Call sites use spdlog::info(...) etc.; messages never contain secrets.
#pragma once

#include <spdlog/spdlog.h>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace saslguard::log {

struct LogOptions {
  std::string sink = "stderr";  // stderr | syslog | json
  std::string level = "info";
  std::string syslog_facility = "mail";
  std::string syslog_ident = "saslguard";
};

// Replaces the process logger. Call before threads start; later only setLevel() is safe.
Result<void> init(const LogOptions& options);
Result<void> setLevel(std::string_view level);
bool jsonMode();

// True when a warning caused by a peer (malformed input, refused connection) may be logged now:
// at most 20 a second across the process, so a hostile peer cannot flood the log. The events
// are always counted in metrics; only their log lines are thinned.
bool peerWarningAllowed();

}  // namespace saslguard::log
