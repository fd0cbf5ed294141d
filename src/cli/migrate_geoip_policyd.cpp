// migrate_geoip_policyd.cpp — see migrate_geoip_policyd.hpp. The JSON keys are the Go field names
// of geoip-policyd v1.0 (no json tags); v0.3.4's top-level `IPs`/`Countries` maps are read as the
// foreign ones. v2021's arrays carry no times, so those records cannot be placed in a window.
#include "cli/migrate_geoip_policyd.hpp"

#include <algorithm>
#include <boost/json.hpp>

#include "common/network.hpp"
#include "common/strings.hpp"
#include "engine/detectors/geo.hpp"

namespace saslguard::cli {
namespace {

namespace json = boost::json;

// A last-seen time in ns as geoip-policyd writes it (time.Now().UnixNano()), in seconds.
Result<std::int64_t> secondsOf(const json::value& value) {
  if (value.is_int64() && value.as_int64() >= 0) return value.as_int64() / 1'000'000'000;
  if (value.is_uint64()) return static_cast<std::int64_t>(value.as_uint64() / 1'000'000'000);
  if (value.is_double() && value.as_double() >= 0) {
    return static_cast<std::int64_t>(value.as_double() / 1e9);
  }
  return fail("not a time in nanoseconds: " + json::serialize(value));
}

// Reads one {"<value>": <ns>} map (absent or null: empty) into `out`, live entries only.
Result<void> readMap(const json::object& record, std::string_view field, bool is_ip,
                     const MigrationRules& rules, std::vector<MigratedEntry>& out,
                     std::size_t& expired) {
  const auto* found = record.if_contains(field);
  if (found == nullptr || found->is_null()) return {};
  const auto where = std::string(field) + ": ";
  if (found->is_array()) {
    return fail(where +
                "a list without times (geoip-policyd before v0.3): nothing to place in a window");
  }
  if (!found->is_object()) return fail(where + "not an object");
  for (const auto& [key, seen] : found->as_object()) {
    auto seen_s = secondsOf(seen);
    if (!seen_s) return fail(where + seen_s.error().message);
    std::string value;
    if (is_ip) {
      const auto address = parseAddress(trim(key));
      if (!address) return fail(where + "'" + std::string(key) + "' is not an IP address");
      value = engine::GeoDetector::clientKey(*address, rules.ipv6_prefix);
    } else {
      value = toUpperAscii(trim(key));
      if (value.empty() || value.find_first_of("{}") != std::string::npos) {
        return fail(where + "'" + std::string(key) + "' is not a country code");
      }
    }
    // The store's rule (ZREMRANGEBYSCORE -inf now - ttl): live while now - last seen < ttl.
    if (*seen_s <= rules.now_s - static_cast<std::int64_t>(rules.ttl_s)) {
      ++expired;
      continue;
    }
    // Two IPv6 addresses of one prefix are one member; the later time wins.
    auto same =
        std::find_if(out.begin(), out.end(), [&](const auto& e) { return e.value == value; });
    if (same == out.end()) {
      out.push_back({std::move(value), *seen_s});
    } else {
      same->last_seen_s = std::max(same->last_seen_s, *seen_s);
    }
  }
  return {};
}

}  // namespace

Result<MigratedRecord> migrateGeopolRecord(std::string_view account, std::string_view text,
                                           const MigrationRules& rules) {
  boost::system::error_code error;
  const auto parsed = json::parse(text, error);
  if (error) return fail("malformed JSON: " + error.message());
  if (!parsed.is_object()) return fail("malformed record: not a JSON object");
  const auto& record = parsed.as_object();
  MigratedRecord out;
  out.account = std::string(account);
  if (const auto* locked = record.if_contains("Locked"); locked != nullptr && !locked->is_null()) {
    if (!locked->is_bool()) return fail("malformed record: Locked is not a boolean");
    out.locked = locked->as_bool();
  }
  const bool v1 = record.contains("ForeignIPs") || record.contains("ForeignCountries") ||
                  record.contains("HomeCountries");
  const bool v03 = record.contains("IPs") || record.contains("Countries");
  if (!v1 && !v03 && !record.contains("Locked")) {
    return fail("malformed record: none of ForeignIPs, ForeignCountries, HomeCountries, Locked");
  }
  const auto wrap = [](Result<void> read) -> Result<void> {
    if (!read) return fail("malformed record: " + read.error().message);
    return {};
  };
  if (auto ok = wrap(readMap(record, v1 ? "ForeignCountries" : "Countries", false, rules,
                             out.foreign_countries, out.expired));
      !ok) {
    return tl::unexpected(ok.error());
  }
  if (auto ok = wrap(
          readMap(record, v1 ? "ForeignIPs" : "IPs", true, rules, out.foreign_ips, out.expired));
      !ok) {
    return tl::unexpected(ok.error());
  }
  if (const auto* home = record.if_contains("HomeCountries"); home != nullptr && !home->is_null()) {
    if (!home->is_object()) return fail("malformed record: HomeCountries is not an object");
    if (auto ok = wrap(
            readMap(home->as_object(), "Countries", false, rules, out.home_countries, out.expired));
        !ok) {
      return tl::unexpected(ok.error());
    }
    if (auto ok = wrap(readMap(home->as_object(), "IPs", true, rules, out.home_ips, out.expired));
        !ok) {
      return tl::unexpected(ok.error());
    }
  }
  return out;
}

}  // namespace saslguard::cli
