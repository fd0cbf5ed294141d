// dns_cache.cpp — see dns_cache.hpp. Expired entries are dropped when a lookup meets them or
// when they reach the front of their shard's age list; nothing sweeps in the background.
#include "enrich/dns_cache.hpp"

#include <algorithm>
#include <cstdint>

namespace saslguard::enrich {
namespace {

char lowerAscii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string_view withoutTrailingDot(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return name;
}

}  // namespace

std::string normalizedDnsName(std::string_view name) {
  name = withoutTrailingDot(name);
  std::string out(name.size(), '\0');
  std::transform(name.begin(), name.end(), out.begin(), lowerAscii);
  return out;
}

std::size_t DnsCache::NameHash::operator()(std::string_view name) const {
  // FNV-1a over the lower-cased bytes.
  std::uint64_t hash = 14695981039346656037ULL;
  for (char c : withoutTrailingDot(name)) {
    hash ^= static_cast<unsigned char>(lowerAscii(c));
    hash *= 1099511628211ULL;
  }
  return static_cast<std::size_t>(hash);
}

bool DnsCache::NameEqual::operator()(std::string_view left, std::string_view right) const {
  left = withoutTrailingDot(left);
  right = withoutTrailingDot(right);
  return left.size() == right.size() &&
         std::equal(left.begin(), left.end(), right.begin(),
                    [](char a, char b) { return lowerAscii(a) == lowerAscii(b); });
}

DnsCache::DnsCache(std::size_t max_entries)
    : capacity_(max_entries), shards_in_use_(std::clamp<std::size_t>(max_entries, 1, kShards)) {
  // Split the bound exactly: the first (max % shards) shards hold one entry more.
  for (std::size_t i = 0; i < shards_in_use_; ++i) {
    shards_.shard(i).lock()->limit =
        max_entries / shards_in_use_ + (i < max_entries % shards_in_use_ ? 1 : 0);
  }
}

Guarded<DnsCache::Shard>& DnsCache::shardFor(std::string_view name) {
  // The high bits pick the shard; the map inside uses the whole hash for its buckets.
  return shards_.shard((NameHash{}(name) >> 40) % shards_in_use_);
}

std::optional<DnsAnswer> DnsCache::find(std::string_view name, Clock::time_point now) {
  if (capacity_ == 0) return std::nullopt;
  auto shard = shardFor(name).lock();
  const auto found = shard->index.find(name);
  if (found == shard->index.end()) return std::nullopt;
  const auto entry = found->second;
  if (entry->expires <= now) {
    shard->index.erase(found);
    shard->by_age.erase(entry);
    return std::nullopt;
  }
  DnsAnswer answer = entry->answer;
  answer.from_cache = true;
  return answer;
}

void DnsCache::store(std::string_view name, const DnsAnswer& answer, std::chrono::seconds ttl,
                     Clock::time_point now) {
  if (capacity_ == 0 || ttl <= std::chrono::seconds::zero()) return;
  auto normalized = normalizedDnsName(name);
  auto shard = shardFor(normalized).lock();
  if (shard->limit == 0) return;
  if (const auto old = shard->index.find(normalized); old != shard->index.end()) {
    const auto entry = old->second;
    shard->index.erase(old);
    shard->by_age.erase(entry);
  }
  while (shard->by_age.size() >= shard->limit) {
    shard->index.erase(shard->by_age.front().name);
    shard->by_age.pop_front();
  }
  shard->by_age.push_back(Entry{std::move(normalized), answer, now + ttl});
  auto entry = std::prev(shard->by_age.end());
  entry->answer.from_cache = false;
  shard->index.emplace(entry->name, entry);
}

std::size_t DnsCache::size() {
  std::size_t total = 0;
  for (std::size_t i = 0; i < kShards; ++i) total += shards_.shard(i).lock()->by_age.size();
  return total;
}

}  // namespace saslguard::enrich
