// registry_cache.hpp — the accounts this daemon knows to be marked compromised in a shared (Redis)
// registry, with the mark's action: kept fresh from every script reply and from the registry's
// pub/sub channel, so a marked account is still refused while Redis is briefly unreachable.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace saslguard::store {

class RegistryCache {
 public:
  // At most `capacity` accounts (0: the cache is off). When full, an arbitrary entry of the same
  // shard makes room: the cache is a fallback, Redis stays the truth.
  explicit RegistryCache(std::size_t capacity);

  // The account is marked; `action` is the mark's (REJECT, HOLD, ..., DUNNO for a log-only one).
  void marked(std::string_view account, std::string_view action);
  void cleared(std::string_view account);
  // The cached mark's action, when the account is known marked.
  std::optional<std::string> action(std::string_view account) const;
  // Keeps only the accounts in `members` (the registry set read after a missed stretch of
  // pub/sub messages).
  void retainOnly(const std::unordered_set<std::string>& members);
  std::size_t size() const { return size_.load(std::memory_order_relaxed); }

 private:
  static constexpr std::size_t kShards = 16;
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, std::string> actions;  // account -> action
  };
  Shard& shardOf(std::string_view account) const;

  std::size_t per_shard_;
  mutable std::array<Shard, kShards> shards_;
  std::atomic<std::size_t> size_{0};
};

}  // namespace saslguard::store
