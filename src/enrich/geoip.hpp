// geoip.hpp — country of a client address from a MaxMind DB (GeoLite2/GeoIP2 City or Country,
// DB-IP in the same format) with libmaxminddb. Lookups run on any thread against an immutable
// opened database; a changed file is reopened and swapped in atomically, and a failed reopen
// keeps the database in use.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace saslguard::enrich {

class GeoIpDatabase {
 public:
  // Fails with a clear message when the file is missing, unreadable or not a MaxMind DB.
  static Result<std::unique_ptr<GeoIpDatabase>> open(const std::filesystem::path& path);
  virtual ~GeoIpDatabase() = default;

  // The ISO 3166-1 alpha-2 code ("DE"), upper case; nullopt for private, loopback, link-local,
  // multicast, documentation and other special addresses, for addresses the database does not
  // know, and for text that is not an IP address. Thread-safe, never blocks on a reload.
  // Reads country.iso_code and falls back to registered_country.iso_code when a network has no
  // country (anycast and satellite ranges): the registration country is the better signal.
  // IPv4-mapped IPv6 (::ffff:a.b.c.d) is looked up, and judged special or not, as IPv4.
  virtual std::optional<std::string> country(std::string_view address) const = 0;

  // Reopens the file when its identity (inode, size, mtime) changed since it was opened: true
  // when a new database is now in use, false when nothing changed; an error (logged by the
  // caller) when the changed file cannot be opened — the old database stays in use.
  // A file that failed is reported once: later calls answer false until the file changes again
  // (a new rename, a finished rewrite), so polling does not repeat the same error every time.
  // Replace the file by rename: the database is mmap()ed, and truncating it in place under a
  // running lookup can fault the process (SIGBUS), as with every libmaxminddb user.
  virtual Result<bool> reloadIfChanged() = 0;

  // "GeoLite2-City, built 2026-11-20, /usr/share/GeoIP/GeoLite2-City.mmdb" for logs.
  virtual std::string description() const = 0;
};

// True for addresses that never have a country: RFC 1918, CGNAT 100.64/10, loopback,
// link-local, multicast, unspecified, documentation ranges, ULA fc00::/7, and the like.
bool isSpecialAddress(std::string_view address);

}  // namespace saslguard::enrich
