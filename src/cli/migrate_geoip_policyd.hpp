// migrate_geoip_policyd.hpp — turns geoip-policyd's per-account Redis records (`geopol_<sender>`,
// JSON with last-seen times in ns; seeds-behaviour §4.5) into the geo detector's distinct sets.
// Pure: parsing and planning only, so the rules are unit-tested without a Redis.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace saslguard::cli {

// One member of a saslguard set: the value the geo detector stores (an IPv4 address, an IPv6
// prefix "2001:db8::/64", an upper-case country code) and when geoip-policyd last saw it.
struct MigratedEntry {
  std::string value;
  std::int64_t last_seen_s = 0;
};

// What one geopol record becomes. The set names are the geo detector's (geo.hpp).
struct MigratedRecord {
  std::string account;  // normalised as saslguard normalises identities
  std::vector<MigratedEntry> foreign_countries, home_countries, foreign_ips, home_ips;
  bool locked = false;      // geoip-policyd's block-permanent lock
  std::size_t expired = 0;  // entries older than ttl_s, left out
  std::size_t live() const {
    return foreign_countries.size() + home_countries.size() + foreign_ips.size() + home_ips.size();
  }
};

struct MigrationRules {
  std::uint32_t ttl_s = 3600;  // detectors.geo.ttl_s: older entries would not count anyway
  int ipv6_prefix = 64;        // detectors.geo.ipv6_prefix: IPv6 clients are counted per prefix
  std::int64_t now_s = 0;
};

// Parses one record's JSON. An error value names what is wrong ("malformed JSON: ...", "ForeignIPs:
// '300.1.1.1' is not an IP address"); the caller skips that record and counts it.
Result<MigratedRecord> migrateGeopolRecord(std::string_view account, std::string_view json,
                                           const MigrationRules& rules);

}  // namespace saslguard::cli
