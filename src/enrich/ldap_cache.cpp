// ldap_cache.cpp — see ldap_cache.hpp. One lock for the whole map: a lookup is a hash probe and
// a string copy, far cheaper than the LDAP round trip it saves, so sharding would not pay yet.
#include "enrich/ldap_cache.hpp"

namespace saslguard::enrich {

LdapCache::LdapCache(std::size_t max_entries, std::chrono::seconds positive_ttl,
                     std::chrono::seconds negative_ttl)
    : max_entries_(max_entries), positive_ttl_(positive_ttl), negative_ttl_(negative_ttl) {}

std::optional<LdapAnswer> LdapCache::find(std::string_view identity, TimePoint now) {
  if (max_entries_ == 0) return std::nullopt;
  auto state = state_.lock();
  const auto found = state->entries.find(std::string(identity));
  if (found == state->entries.end()) return std::nullopt;
  if (found->second.expires <= now) {
    state->oldest_first.erase(found->second.age);
    state->entries.erase(found);
    return std::nullopt;
  }
  LdapAnswer answer;
  answer.status = found->second.status;
  answer.account = found->second.account;
  answer.from_cache = true;
  return answer;
}

void LdapCache::store(const std::string& identity, const LdapAnswer& answer, TimePoint now) {
  if (max_entries_ == 0 || answer.status == LdapStatus::kFailed) return;
  const auto ttl = answer.status == LdapStatus::kMapped ? positive_ttl_ : negative_ttl_;
  if (ttl <= std::chrono::seconds::zero()) return;
  auto state = state_.lock();
  if (const auto old = state->entries.find(identity); old != state->entries.end()) {
    state->oldest_first.erase(old->second.age);
    state->entries.erase(old);
  }
  while (state->entries.size() >= max_entries_) {
    state->entries.erase(state->oldest_first.front());
    state->oldest_first.pop_front();
  }
  state->oldest_first.push_back(identity);
  state->entries.emplace(identity, Entry{answer.status, answer.account, now + ttl,
                                         std::prev(state->oldest_first.end())});
}

std::size_t LdapCache::size() {
  return state_.lock()->entries.size();
}

}  // namespace saslguard::enrich
