// geoip.cpp — GeoIpDatabase on libmaxminddb: each opened file is an immutable OpenedDatabase held
// by a shared_ptr swapped atomically, so a reload replaces the pointer while lookups in progress
// keep their database mapped until they finish. Also the special-address table (RFC 6890).
#include "enrich/geoip.hpp"

#include <arpa/inet.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <memory>  // std::atomic_load/atomic_store for shared_ptr
#include <mutex>

#include "common/guarded.hpp"
#include "common/strings.hpp"
#include "metrics/metrics.hpp"

namespace saslguard::enrich {
namespace {

namespace fs = std::filesystem;

// ---- Addresses -------------------------------------------------------------------------------

// An address after inet_pton. IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes plain IPv4: Postfix
// reports it that way on dual-stack listeners, and both the special table and the database
// should judge the IPv4 client behind it.
struct ParsedAddress {
  bool is_ipv4 = false;
  in_addr ipv4{};
  in6_addr ipv6{};
};

std::optional<ParsedAddress> parseAddress(std::string_view text) {
  // inet_pton wants a NUL-terminated string; anything longer than the longest IPv6 text is not
  // an address (this also rejects zone ids such as "fe80::1%eth0" along the way via inet_pton).
  std::array<char, INET6_ADDRSTRLEN + 1> buffer{};
  if (text.empty() || text.size() >= buffer.size()) return std::nullopt;
  std::memcpy(buffer.data(), text.data(), text.size());

  ParsedAddress parsed;
  if (::inet_pton(AF_INET, buffer.data(), &parsed.ipv4) == 1) {
    parsed.is_ipv4 = true;
    return parsed;
  }
  if (::inet_pton(AF_INET6, buffer.data(), &parsed.ipv6) != 1) return std::nullopt;
  if (IN6_IS_ADDR_V4MAPPED(&parsed.ipv6)) {
    parsed.is_ipv4 = true;
    std::memcpy(&parsed.ipv4, &parsed.ipv6.s6_addr[12], sizeof parsed.ipv4);
  }
  return parsed;
}

struct Ipv4Range {
  std::uint32_t network;  // host byte order
  unsigned prefix_length;
};

constexpr std::uint32_t ipv4(unsigned a, unsigned b, unsigned c, unsigned d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}

// RFC 6890 / IANA special-purpose registry, minus the ranges that are globally reachable.
constexpr std::array kSpecialIpv4 = {
    Ipv4Range{ipv4(0, 0, 0, 0), 8},          // "this network"
    Ipv4Range{ipv4(10, 0, 0, 0), 8},         // RFC 1918
    Ipv4Range{ipv4(100, 64, 0, 0), 10},      // CGNAT shared address space
    Ipv4Range{ipv4(127, 0, 0, 0), 8},        // loopback
    Ipv4Range{ipv4(169, 254, 0, 0), 16},     // link-local
    Ipv4Range{ipv4(172, 16, 0, 0), 12},      // RFC 1918
    Ipv4Range{ipv4(192, 0, 0, 0), 24},       // IETF protocol assignments
    Ipv4Range{ipv4(192, 0, 2, 0), 24},       // TEST-NET-1
    Ipv4Range{ipv4(192, 168, 0, 0), 16},     // RFC 1918
    Ipv4Range{ipv4(198, 18, 0, 0), 15},      // benchmarking
    Ipv4Range{ipv4(198, 51, 100, 0), 24},    // TEST-NET-2
    Ipv4Range{ipv4(203, 0, 113, 0), 24},     // TEST-NET-3
    Ipv4Range{ipv4(224, 0, 0, 0), 4},        // multicast
    Ipv4Range{ipv4(240, 0, 0, 0), 4},        // reserved
    Ipv4Range{ipv4(255, 255, 255, 255), 32}  // limited broadcast (inside 240/4; listed for readers)
};

struct Ipv6Range {
  std::array<std::uint8_t, 16> network;
  unsigned prefix_length;
};

// 64:ff9b::/96 (NAT64) is deliberately not here: the embedded IPv4 address is a real client and
// judging it would need a second lookup; the database simply has no entry for it.
constexpr std::array kSpecialIpv6 = {
    Ipv6Range{{}, 128},                                                // :: unspecified
    Ipv6Range{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128},  // ::1 loopback
    Ipv6Range{{0x01, 0x00}, 64},                                       // 100::/64 discard
    Ipv6Range{{0x20, 0x01, 0x0d, 0xb8}, 32},                           // documentation
    Ipv6Range{{0xfc}, 7},                                              // unique local
    Ipv6Range{{0xfe, 0x80}, 10},                                       // link-local
    Ipv6Range{{0xff}, 8},                                              // multicast
};

bool ipv6InRange(const in6_addr& address, const Ipv6Range& range) {
  unsigned bits = range.prefix_length;
  for (std::size_t i = 0; bits > 0; ++i) {
    const unsigned take = bits >= 8 ? 8 : bits;
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - take));
    if ((address.s6_addr[i] & mask) != (range.network[i] & mask)) return false;
    bits -= take;
  }
  return true;
}

bool isSpecial(const ParsedAddress& address) {
  if (address.is_ipv4) {
    const std::uint32_t host = ntohl(address.ipv4.s_addr);
    for (const auto& range : kSpecialIpv4) {
      const std::uint32_t mask = ~std::uint32_t{0} << (32 - range.prefix_length);
      if ((host & mask) == range.network) return true;
    }
    return false;
  }
  for (const auto& range : kSpecialIpv6) {
    if (ipv6InRange(address.ipv6, range)) return true;
  }
  return false;
}

// ---- Files -----------------------------------------------------------------------------------

// What tells us the file changed: a replacement by rename (geoipupdate, our tests) gives a new
// inode; a rewrite in place changes size or mtime (nanoseconds).
struct FileIdentity {
  bool regular_file = false;
  dev_t device = 0;
  ino_t inode = 0;
  off_t size_bytes = 0;
  std::int64_t mtime_s = 0;
  long mtime_ns = 0;

  bool operator==(const FileIdentity&) const = default;
};

Result<FileIdentity> identityOf(const fs::path& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) {
    return fail("cannot open GeoIP database " + path.string() + ": " +
                MMDB_strerror(MMDB_FILE_OPEN_ERROR) + " (" + std::strerror(errno) + ")");
  }
  return FileIdentity{S_ISREG(status.st_mode), status.st_dev,         status.st_ino,
                      status.st_size,          status.st_mtim.tv_sec, status.st_mtim.tv_nsec};
}

// One opened file; never changes after open(). The MMDB_s lives inside this object (it must not
// move: lookup results point back at it) and is closed when the last lookup lets go of it.
class OpenedDatabase {
 public:
  using SharedPtr = std::shared_ptr<const OpenedDatabase>;

  // The identity is taken *before* MMDB_open: if the file is replaced in between, we hold the
  // newer file under the older identity, so the next reloadIfChanged() reopens (harmless). The
  // other order could pair the old data with the new identity and never reload.
  static Result<SharedPtr> open(const fs::path& path) {
    auto identity = identityOf(path);
    if (!identity) return tl::unexpected(identity.error());
    // libmaxminddb would say "An attempt to read data from the MaxMind DB file failed" for both
    // (mmap fails with ENODEV / EINVAL); an operator deserves the plain reason.
    if (!identity->regular_file) {
      return fail("cannot open GeoIP database " + path.string() + ": not a regular file");
    }
    if (identity->size_bytes == 0) {
      return fail("cannot open GeoIP database " + path.string() + ": the file is empty");
    }
    auto database = std::make_shared<OpenedDatabase>(*identity);
    errno = 0;
    const int status = MMDB_open(path.c_str(), MMDB_MODE_MMAP, &database->mmdb_);
    if (status != MMDB_SUCCESS) {
      database->opened_ = false;
      std::string reason = MMDB_strerror(status);
      if (status == MMDB_IO_ERROR || status == MMDB_FILE_OPEN_ERROR) {
        if (errno != 0) reason += std::string(" (") + std::strerror(errno) + ")";
      }
      return fail("cannot open GeoIP database " + path.string() + ": " + reason);
    }
    database->opened_ = true;
    return database;
  }

  explicit OpenedDatabase(const FileIdentity& identity) : identity_(identity) {}
  ~OpenedDatabase() {
    if (opened_) MMDB_close(&mmdb_);
  }
  OpenedDatabase(const OpenedDatabase&) = delete;
  OpenedDatabase& operator=(const OpenedDatabase&) = delete;

  const FileIdentity& identity() const { return identity_; }
  const MMDB_metadata_s& metadata() const { return mmdb_.metadata; }

  std::optional<std::string> countryOf(const ParsedAddress& address) const {
    sockaddr_storage storage{};
    if (address.is_ipv4) {
      auto& v4 = reinterpret_cast<sockaddr_in&>(storage);
      v4.sin_family = AF_INET;
      v4.sin_addr = address.ipv4;
    } else {
      auto& v6 = reinterpret_cast<sockaddr_in6&>(storage);
      v6.sin6_family = AF_INET6;
      v6.sin6_addr = address.ipv6;
    }
    int mmdb_error = MMDB_SUCCESS;
    // An IPv6 address in an IPv4-only database comes back as an error: no country, not a fault.
    MMDB_lookup_result_s result =
        MMDB_lookup_sockaddr(&mmdb_, reinterpret_cast<const sockaddr*>(&storage), &mmdb_error);
    if (mmdb_error != MMDB_SUCCESS || !result.found_entry) return std::nullopt;

    // GeoIP2/GeoLite2 City and Country both carry country.iso_code. A few networks (anycast,
    // satellite providers, some ranges in DB-IP Lite) have only registered_country: the country
    // the block is registered to is a better signal for "new country for this account" than none.
    if (auto code = isoCodeAt(result.entry, "country")) return code;
    return isoCodeAt(result.entry, "registered_country");
  }

 private:
  static std::optional<std::string> isoCodeAt(MMDB_entry_s entry, const char* map_name) {
    MMDB_entry_data_s data{};
    const int status =
        MMDB_get_value(&entry, &data, map_name, "iso_code", static_cast<const char*>(nullptr));
    if (status != MMDB_SUCCESS || !data.has_data || data.type != MMDB_DATA_TYPE_UTF8_STRING ||
        data.data_size == 0) {
      return std::nullopt;
    }
    return toUpperAscii(std::string_view(data.utf8_string, data.data_size));
  }

  FileIdentity identity_;
  MMDB_s mmdb_{};
  bool opened_ = false;
};

std::string utcDate(std::uint64_t epoch_s) {
  const auto seconds = static_cast<std::time_t>(epoch_s);
  std::tm parts{};
  ::gmtime_r(&seconds, &parts);
  std::array<char, 16> text{};
  std::strftime(text.data(), text.size(), "%Y-%m-%d", &parts);
  return text.data();
}

// ---- The database in use ---------------------------------------------------------------------

class MaxMindGeoIpDatabase final : public GeoIpDatabase {
 public:
  MaxMindGeoIpDatabase(fs::path path, OpenedDatabase::SharedPtr opened)
      : path_(std::move(path)), current_(std::move(opened)) {}

  std::optional<std::string> country(std::string_view address) const override {
    const auto parsed = parseAddress(address);
    if (!parsed || isSpecial(*parsed)) return std::nullopt;
    // Counted only when the database is consulted, so the counter measures database work.
    SASLGUARD_COUNT(geoip_lookups_total);
    const OpenedDatabase::SharedPtr database = std::atomic_load(&current_);
    return database->countryOf(*parsed);
  }

  Result<bool> reloadIfChanged() override {
    auto state = reload_state_.lock();
    auto identity = identityOf(path_);
    // A missing file counts as one more identity (all zeros) so that it, too, is reported once.
    const FileIdentity seen = identity ? *identity : FileIdentity{};
    if (identity && seen == std::atomic_load(&current_)->identity()) {
      state->failed_identity.reset();
      return false;
    }
    // Already reported: reopening the same broken file on every poll would only repeat the
    // error line and the failure counter. Any change to the file (a new rename, a finished
    // rewrite) gives a new identity and is tried again.
    if (state->failed_identity == seen) return false;

    auto opened = identity ? OpenedDatabase::open(path_)
                           : Result<OpenedDatabase::SharedPtr>(tl::unexpected(identity.error()));
    if (!opened) {
      state->failed_identity = seen;
      SASLGUARD_COUNT(geoip_reload_failures_total);
      return fail(opened.error().message + " (still using the previous database)");
    }
    state->failed_identity.reset();
    std::atomic_store(&current_, std::move(*opened));
    SASLGUARD_COUNT(geoip_reloads_total);
    return true;
  }

  std::string description() const override {
    const OpenedDatabase::SharedPtr database = std::atomic_load(&current_);
    const auto& metadata = database->metadata();
    const char* type = metadata.database_type != nullptr ? metadata.database_type : "unknown";
    return std::string(type) + ", built " + utcDate(metadata.build_epoch) + ", " + path_.string();
  }

 private:
  struct ReloadState {
    std::optional<FileIdentity> failed_identity;  // last identity that failed to open
  };

  const fs::path path_;
  // Only through std::atomic_load/atomic_store. Not std::atomic<std::shared_ptr>: libstdc++ 12
  // unlocks it with a relaxed RMW in load(), which ThreadSanitizer reports as a race against
  // store() (google/sanitizers#1558); the free functions lock libstdc++'s mutex pool and keep
  // TSan runs clean. Either way a lookup only holds a lock to copy the pointer.
  OpenedDatabase::SharedPtr current_;
  Guarded<ReloadState> reload_state_;  // serialises reloadIfChanged() callers
};

}  // namespace

Result<std::unique_ptr<GeoIpDatabase>> GeoIpDatabase::open(const std::filesystem::path& path) {
  auto opened = OpenedDatabase::open(path);
  if (!opened) return tl::unexpected(opened.error());
  return std::unique_ptr<GeoIpDatabase>(
      std::make_unique<MaxMindGeoIpDatabase>(path, std::move(*opened)));
}

bool isSpecialAddress(std::string_view address) {
  const auto parsed = parseAddress(address);
  return !parsed || isSpecial(*parsed);
}

}  // namespace saslguard::enrich
