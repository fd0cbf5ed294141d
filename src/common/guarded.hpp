// guarded.hpp — shared mutable state is reachable only while its lock is held (dnsdist's
// LockGuarded). Sharded<T, N> spreads a hot map over N independently locked shards.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <mutex>
#include <utility>

namespace saslguard {

template <class T>
class Locked {
 public:
  Locked(std::mutex& mutex, T& value) : lock_(mutex), value_(&value) {}
  T* operator->() { return value_; }
  T& operator*() { return *value_; }

 private:
  std::unique_lock<std::mutex> lock_;
  T* value_;
};

template <class T>
class Guarded {
 public:
  Guarded() = default;
  template <class... Args>
  explicit Guarded(Args&&... args) : value_(std::forward<Args>(args)...) {}
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;

  Locked<T> lock() { return Locked<T>(mutex_, value_); }

 private:
  std::mutex mutex_;
  T value_;
};

// A fixed number of independently locked shards, chosen by a hash of the key.
template <class T, std::size_t N>
class Sharded {
 public:
  static constexpr std::size_t kShards = N;
  template <class Key>
  Guarded<T>& shardFor(const Key& key) {
    return shards_[std::hash<Key>{}(key) % N];
  }
  Guarded<T>& shard(std::size_t index) { return shards_[index]; }

 private:
  std::array<Guarded<T>, N> shards_;
};

}  // namespace saslguard
