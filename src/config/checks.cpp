// checks.cpp — see checks.hpp. Messages read as "expected ..." so that the loader can append
// ", got <value>" and name the file, line and key around them.
#include "config/checks.hpp"

#include <charconv>

#include "common/network.hpp"

namespace saslguard::config {

namespace {

constexpr std::string_view kListenForms = "HOST:PORT, [IPv6]:PORT or unix:/absolute/path";

bool isHostNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.';
}

Result<std::uint16_t> parsePort(std::string_view text) {
  unsigned port = 0;
  const auto* end = text.data() + text.size();
  auto [stop, ec] = std::from_chars(text.data(), end, port);
  if (text.empty() || ec != std::errc() || stop != end || port > 65535) {
    return fail("expected a port from 0 to 65535 after the last ':'");
  }
  return static_cast<std::uint16_t>(port);
}

}  // namespace

Result<ListenAddress> parseListenAddress(std::string_view text) {
  ListenAddress address;
  if (text.starts_with("unix:")) {
    address.kind = ListenAddress::Kind::kUnix;
    address.path = std::string(text.substr(5));
    if (!address.path.starts_with('/')) return fail("a unix socket path must be absolute");
    return address;
  }
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return fail("expected " + std::string(kListenForms));
  auto host = text.substr(0, colon);
  auto port = parsePort(text.substr(colon + 1));
  if (!port) return tl::unexpected(port.error());
  address.port = *port;
  if (host.starts_with('[')) {
    if (!host.ends_with(']')) return fail("expected " + std::string(kListenForms));
    host = host.substr(1, host.size() - 2);
    auto ip = parseAddress(host);
    if (!ip || host.find(':') == std::string_view::npos) {
      return fail("expected an IPv6 address between the brackets");
    }
  } else if (host.find(':') != std::string_view::npos) {
    return fail("IPv6 addresses need brackets, as in [::1]:10040");
  } else if (host.empty()) {
    return fail("expected " + std::string(kListenForms));
  } else {
    for (char c : host) {
      if (!isHostNameChar(c)) return fail("expected an IP address or host name before the port");
    }
  }
  address.host = std::string(host);
  return address;
}

Result<unsigned> parseSocketMode(std::string_view text) {
  unsigned mode = 0;
  const auto* end = text.data() + text.size();
  auto [stop, ec] = std::from_chars(text.data(), end, mode, 8);
  if (text.empty() || text.size() > 4 || ec != std::errc() || stop != end || mode > 0777) {
    return fail("expected an octal file mode such as 0660");
  }
  return mode;
}

Result<void> checkListen(std::string_view text) {
  auto address = parseListenAddress(text);
  if (!address) return tl::unexpected(address.error());
  return {};
}

Result<void> checkCountryCode(std::string_view text) {
  const auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (text.size() == 2 && letter(text[0]) && letter(text[1])) return {};
  return fail("expected an ISO 3166 country code of two letters such as DE");
}

Result<void> checkNetwork(std::string_view text) {
  if (parseNetwork(text)) return {};
  const auto slash = text.find('/');
  if (slash != std::string_view::npos && parseAddress(text.substr(0, slash))) {
    return fail("expected a prefix length up to 32 (IPv4) or 128 (IPv6) after '/'");
  }
  return fail("expected an IP address or a CIDR network such as 192.0.2.0/24 or 2001:db8::/32");
}

Result<void> checkSocketMode(std::string_view text) {
  auto mode = parseSocketMode(text);
  if (!mode) return tl::unexpected(mode.error());
  return {};
}

Result<void> checkAbsolutePath(std::string_view text) {
  if (!text.starts_with('/')) return fail("expected an absolute path");
  return {};
}

Result<void> checkHostPort(std::string_view text) {
  auto address = parseListenAddress(text);
  if (!address || address->kind != ListenAddress::Kind::kTcp || address->port == 0) {
    return fail("expected host:port or [v6]:port with a port from 1 to 65535");
  }
  return {};
}

Result<void> checkOptionalAbsolutePath(std::string_view text) {
  if (text.empty()) return {};
  return checkAbsolutePath(text);
}

Result<void> checkOneLine(std::string_view text) {
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) return fail("expected one line of text without control characters");
  }
  return {};
}

Result<void> checkNotEmpty(std::string_view text) {
  if (text.empty()) return fail("expected a non-empty value");
  return {};
}

}  // namespace saslguard::config
