// checks.hpp — checks for single option values beyond their type: listen addresses, networks,
// socket modes, absolute paths, reply texts. The server parses listen entries with the same
// function, so what the configuration accepts is exactly what the daemon can bind.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace saslguard::config {

struct ListenAddress {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string host;        // IPv4 or IPv6 literal (without brackets) or a host name
  std::uint16_t port = 0;  // 0: any free port (tests)
  std::string path;        // kUnix: absolute socket path
};

// "127.0.0.1:10040", "[::1]:10040", "localhost:10040" or "unix:/absolute/path".
Result<ListenAddress> parseListenAddress(std::string_view text);
// "0660" or "660" -> 0660; at most 0777.
Result<unsigned> parseSocketMode(std::string_view text);

// Item checks for the option table. The error says what was expected, without the value
// itself: the caller appends it (masked for secrets).
Result<void> checkListen(std::string_view text);
Result<void> checkNetwork(std::string_view text);
Result<void> checkHostPort(std::string_view text);  // a server to connect to: host:port, port > 0
Result<void> checkSocketMode(std::string_view text);
Result<void> checkAbsolutePath(std::string_view text);
Result<void> checkOptionalAbsolutePath(std::string_view text);  // empty (unset) or absolute
Result<void> checkOneLine(std::string_view text);  // printable, no line breaks (reply texts)
Result<void> checkNotEmpty(std::string_view text);
Result<void> checkCountryCode(std::string_view text);  // two ASCII letters, any case

}  // namespace saslguard::config
