// mmdb.hpp — writes small MaxMind DB files for tests (no GeoLite2 data is packaged in Debian),
// with perl's MaxMind::DB::Writer::Tree, and names the public test networks whose countries
// every test may rely on. Writing one database costs about 0.3 s (perl start-up dominates).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace saslguard::testing {

// Networks and addresses from MaxMind's own test databases (MaxMind-DB/test-data): ordinary
// public ranges, because saslguard treats the documentation ranges (192.0.2.0/24,
// 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) as special addresses that never have a country.
inline constexpr std::string_view kGbNetwork = "81.2.69.0/24";
inline constexpr std::string_view kGbAddress = "81.2.69.142";
inline constexpr std::string_view kGbNetwork2 = "2.125.160.0/24";
inline constexpr std::string_view kGbAddress2 = "2.125.160.216";
inline constexpr std::string_view kSeNetwork = "89.160.20.0/24";
inline constexpr std::string_view kSeAddress = "89.160.20.112";
inline constexpr std::string_view kCnNetwork = "175.16.199.0/24";
inline constexpr std::string_view kCnAddress = "175.16.199.1";
inline constexpr std::string_view kUsNetwork = "216.160.83.0/24";
inline constexpr std::string_view kUsAddress = "216.160.83.56";
inline constexpr std::string_view kNoV6Network = "2a02:cf40::/29";
inline constexpr std::string_view kNoV6Address = "2a02:cf40::1";
inline constexpr std::string_view kJpV6Network = "2001:218::/32";
inline constexpr std::string_view kJpV6Address = "2001:218::1";
// A public address in none of the networks above: the default databases do not know it.
inline constexpr std::string_view kUnknownAddress = "8.8.8.8";

using MmdbNetworks = std::vector<std::pair<std::string /*CIDR*/, std::string /*ISO code*/>>;

// GB (two IPv4 networks), SE, CN, US over IPv4; NO and JP over IPv6. IPv4-mapped IPv6
// (::ffff:81.2.69.142) finds the IPv4 entries because the writer aliases ::ffff:0:0/96.
MmdbNetworks defaultTestNetworks();

// One network's record. Empty codes are left out of the record, so a network may have a
// registered_country without a country (as anycast ranges in GeoLite2 do).
struct MmdbRecord {
  std::string cidr;
  std::string country_iso_code;
  std::string registered_country_iso_code;
};

// Writes an IPv6 tree (record size 28, IPv4 aliased into it, reserved networks allowed so a test
// may put 10.0.0.0/8 in on purpose) with country and registered_country both set to the code.
// Later entries win where networks overlap. Throws std::runtime_error with perl's stderr when
// the writer fails (a malformed CIDR, a network inside an aliased range such as 2001::/32).
void writeMmdb(const std::filesystem::path& out, const MmdbNetworks& networks,
               const std::string& database_type = "GeoLite2-Country");
void writeMmdbRecords(const std::filesystem::path& out, const std::vector<MmdbRecord>& records,
                      const std::string& database_type = "GeoLite2-Country");

// Writes next to `out` and renames over it, as geoipupdate does: readers see the old or the new
// file, never half of one, and the inode changes.
void writeMmdbAtomically(const std::filesystem::path& out, const MmdbNetworks& networks,
                         const std::string& database_type = "GeoLite2-Country");

// Copies `source` next to `out` and renames it over `out` (a fresh inode each time): cheap
// replacement for tests that swap between a few prepared databases many times.
void replaceAtomically(const std::filesystem::path& source, const std::filesystem::path& out);

// Replaces `out` (by rename) with bytes that are not a MaxMind DB.
void writeGarbageAtomically(const std::filesystem::path& out,
                            std::string_view content = "this is not a MaxMind DB\n");

}  // namespace saslguard::testing
