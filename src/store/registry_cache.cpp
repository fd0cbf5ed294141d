// registry_cache.cpp — see registry_cache.hpp. Sharded maps behind one mutex each; the common
// case (an unmarked account and an empty cache) takes no lock at all.
#include "store/registry_cache.hpp"

#include <functional>

namespace saslguard::store {

RegistryCache::RegistryCache(std::size_t capacity)
    : per_shard_(capacity == 0 ? 0 : (capacity + kShards - 1) / kShards) {}

RegistryCache::Shard& RegistryCache::shardOf(std::string_view account) const {
  return shards_[std::hash<std::string_view>{}(account) % kShards];
}

void RegistryCache::marked(std::string_view account, std::string_view action) {
  if (per_shard_ == 0) return;
  auto& shard = shardOf(account);
  std::lock_guard lock(shard.mutex);
  auto found = shard.actions.find(std::string(account));
  if (found != shard.actions.end()) {
    if (found->second != action) found->second = std::string(action);
    return;
  }
  if (shard.actions.size() >= per_shard_) {
    shard.actions.erase(shard.actions.begin());
    size_.fetch_sub(1, std::memory_order_relaxed);
  }
  shard.actions.emplace(std::string(account), std::string(action));
  size_.fetch_add(1, std::memory_order_relaxed);
}

void RegistryCache::cleared(std::string_view account) {
  if (size_.load(std::memory_order_relaxed) == 0) return;
  auto& shard = shardOf(account);
  std::lock_guard lock(shard.mutex);
  if (shard.actions.erase(std::string(account)) > 0) size_.fetch_sub(1, std::memory_order_relaxed);
}

std::optional<std::string> RegistryCache::action(std::string_view account) const {
  if (size_.load(std::memory_order_relaxed) == 0) return std::nullopt;
  auto& shard = shardOf(account);
  std::lock_guard lock(shard.mutex);
  const auto found = shard.actions.find(std::string(account));
  if (found == shard.actions.end()) return std::nullopt;
  return found->second;
}

void RegistryCache::retainOnly(const std::unordered_set<std::string>& members) {
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    for (auto it = shard.actions.begin(); it != shard.actions.end();) {
      if (members.contains(it->first)) {
        ++it;
      } else {
        it = shard.actions.erase(it);
        size_.fetch_sub(1, std::memory_order_relaxed);
      }
    }
  }
}

}  // namespace saslguard::store
