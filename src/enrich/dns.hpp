// dns.hpp — asynchronous DNS A lookups for reputation zones: c-ares driven from an Asio event
// loop (one resolver per worker thread), a TTL-honouring cache shared by all workers that also
// keeps negative answers, and concurrent lookups of one name merged into one query.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace saslguard::enrich {

struct DnsOptions {
  std::vector<std::string> servers;  // "127.0.0.1:15353", "[::1]:53"; empty: the system resolver
  std::chrono::milliseconds timeout{1500};  // per try
  int tries = 2;
  std::chrono::seconds max_ttl{3600};      // positive answers are kept min(TTL, max_ttl)
  std::chrono::seconds negative_ttl{300};  // NXDOMAIN / no data, unless the SOA says less
  std::size_t cache_entries = 100000;      // bounded: the oldest entries go first
};

enum class DnsStatus {
  kFound,     // one or more A records
  kNotFound,  // NXDOMAIN or no A record: the name is not listed
  kTimeout,   // no answer after every try
  kFailed,    // SERVFAIL, REFUSED, bad reply, no server reachable
};

struct DnsAnswer {
  DnsStatus status = DnsStatus::kFailed;
  std::vector<std::uint32_t> addresses;  // A records in host byte order (127.0.0.4 = 0x7f000004)
  bool from_cache = false;
  std::string error;  // kTimeout / kFailed: what went wrong, fit for a log line
};

class DnsCache;  // shared by the resolvers of all workers; internally locked (dns_cache.hpp)

// Bounded by options.cache_entries (0: nothing is cached). Only kFound (for min(TTL, max_ttl))
// and kNotFound (for negative_ttl, or less when the zone's SOA says so) answers are kept;
// timeouts and failures never are.
std::shared_ptr<DnsCache> makeDnsCache(const DnsOptions& options);

class DnsResolver {
 public:
  // Fails when the options are unusable (a bad server address); names the bad entry.
  // A null `cache` gives the resolver a private one. SERVFAIL and REFUSED end the lookup (no
  // failover to the next server on those two codes; timeouts do fail over).
  static Result<std::unique_ptr<DnsResolver>> create(boost::asio::io_context& context,
                                                     const DnsOptions& options,
                                                     std::shared_ptr<DnsCache> cache);
  virtual ~DnsResolver() = default;

  // The cached answer for `name`, if a fresh one exists (no suspension, no allocation on a hit
  // beyond the copy of the answer).
  virtual std::optional<DnsAnswer> cached(std::string_view name) = 0;
  // Looks `name` up (type A): from the cache when fresh, else joins a query already in flight
  // for it, else sends one. Always completes, within timeout * tries plus a little; at once
  // (kTimeout) while the servers are unresponsive: a lookup ran out of time and no reply came
  // since. The query is sent then too, and its reply ends that state.
  // `name` is absolute ("2.0.0.127.key.authbl.test"; no search domains), any case, with or
  // without the trailing dot. Call it only on this resolver's io_context thread.
  virtual boost::asio::awaitable<DnsAnswer> resolve(std::string name) = 0;
  // Cancels queries in flight (they complete with kFailed "shutting down") and closes the
  // sockets, so the io_context runs out of work; later lookups that miss the cache fail at once.
  // The destructor does the same. Destroy the resolver before its io_context.
  virtual void shutdown() = 0;
};

// "4.3.2.1" for 1.2.3.4; 32 dot-separated nibbles, lowest first, for an IPv6 address (also for
// the IPv4-mapped form). nullopt when `address` is not an IP address.
std::optional<std::string> reversedAddress(std::string_view address);
// Lower-case hex SHA-1 of `text` (OpenSSL), 40 characters.
std::string sha1Hex(std::string_view text);

}  // namespace saslguard::enrich
