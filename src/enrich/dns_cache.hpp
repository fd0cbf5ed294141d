// dns_cache.hpp — the DNS answer cache shared by every worker's resolver: keyed by the name
// without case or trailing dot, each entry kept for its TTL, bounded by evicting the oldest
// insertion first. Spread over independently locked shards so workers rarely contend.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/guarded.hpp"
#include "enrich/dns.hpp"

namespace saslguard::enrich {

// "Zone.Example." -> "zone.example": the form names are cached and merged under.
std::string normalizedDnsName(std::string_view name);

class DnsCache {
 public:
  using Clock = std::chrono::steady_clock;

  // max_entries 0 disables caching (every lookup goes to the server).
  explicit DnsCache(std::size_t max_entries);
  DnsCache(const DnsCache&) = delete;
  DnsCache& operator=(const DnsCache&) = delete;

  // A fresh answer for `name` (any case, with or without the trailing dot), marked from_cache.
  // Allocates nothing beyond the copy it returns.
  std::optional<DnsAnswer> find(std::string_view name, Clock::time_point now);
  // Keeps `answer` until now + ttl, replacing an older entry for the name. Nothing is kept for
  // a ttl of zero or less.
  void store(std::string_view name, const DnsAnswer& answer, std::chrono::seconds ttl,
             Clock::time_point now);

  std::size_t size();
  std::size_t capacity() const { return capacity_; }

 private:
  // Case-insensitive, trailing-dot-insensitive hash and equality, so that lookups need no
  // lower-cased copy of the name.
  struct NameHash {
    std::size_t operator()(std::string_view name) const;
  };
  struct NameEqual {
    bool operator()(std::string_view left, std::string_view right) const;
  };
  struct Entry {
    std::string name;  // normalised; the index's key views it
    DnsAnswer answer;
    Clock::time_point expires;
  };
  struct Shard {
    std::size_t limit = 0;
    std::list<Entry> by_age;  // oldest insertion first
    std::unordered_map<std::string_view, std::list<Entry>::iterator, NameHash, NameEqual> index;
  };
  static constexpr std::size_t kShards = 16;

  Guarded<Shard>& shardFor(std::string_view name);

  std::size_t capacity_;
  std::size_t shards_in_use_;  // fewer than kShards for a tiny cache, so none has room for 0
  Sharded<Shard, kShards> shards_;
};

}  // namespace saslguard::enrich
