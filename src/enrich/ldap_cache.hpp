// ldap_cache.hpp — the LdapMapper's answers by identity, shared by the event loop and the pool
// workers: accounts for cache_ttl, "no such identity" for negative_cache_ttl, failures never.
// Bounded by evicting the oldest insertion first.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/guarded.hpp"
#include "enrich/ldap.hpp"

namespace saslguard::enrich {

class LdapCache {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // max_entries 0 disables caching.
  LdapCache(std::size_t max_entries, std::chrono::seconds positive_ttl,
            std::chrono::seconds negative_ttl);
  LdapCache(const LdapCache&) = delete;
  LdapCache& operator=(const LdapCache&) = delete;

  // A fresh answer (from_cache set), or nullopt; an expired entry is dropped on the way.
  std::optional<LdapAnswer> find(std::string_view identity, TimePoint now);
  // Keeps kMapped and kNotFound answers; ignores kFailed ones.
  void store(const std::string& identity, const LdapAnswer& answer, TimePoint now);
  std::size_t size();

 private:
  struct Entry {
    LdapStatus status;
    std::string account;
    TimePoint expires;
    std::list<std::string>::iterator age;  // its place in State::oldest_first
  };
  struct State {
    std::unordered_map<std::string, Entry> entries;
    std::list<std::string> oldest_first;
  };

  const std::size_t max_entries_;
  const std::chrono::seconds positive_ttl_;
  const std::chrono::seconds negative_ttl_;
  Guarded<State> state_;
};

}  // namespace saslguard::enrich
