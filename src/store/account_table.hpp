// account_table.hpp — one shard's accounts: an open-addressing table of {64-bit hash, entry}
// slots (linear probing, backward-shift deletion) over heap entries that hold the account name
// inline. A lookup costs two cache misses (slot, entry) where std::unordered_map costs four
// (bucket, previous node, node, key) — what dominates execute() with a million accounts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "store/account_state.hpp"

namespace saslguard::store {

// An account's state followed by its name; allocated once, never moved, so pointers to it stay
// valid until it is erased.
class AccountEntry {
 public:
  AccountState state;

  std::string_view key() const { return {reinterpret_cast<const char*>(this + 1), key_size_}; }
  static AccountEntry* create(std::string_view key);
  static void destroy(AccountEntry* entry);

 private:
  AccountEntry() = default;
  ~AccountEntry() = default;
  std::uint32_t key_size_ = 0;
};

class AccountTable {
 public:
  AccountTable() = default;
  AccountTable(const AccountTable&) = delete;
  AccountTable& operator=(const AccountTable&) = delete;
  ~AccountTable();

  // `hash` is accountHash(key); callers compute it once per request.
  AccountEntry* find(std::string_view key, std::uint64_t hash) const;
  // The entry for key, created (with empty state) when absent; second: whether it was created.
  std::pair<AccountEntry*, bool> insert(std::string_view key, std::uint64_t hash);
  // Removes and destroys the entry.
  void erase(AccountEntry* entry, std::uint64_t hash);
  void reserve(std::size_t accounts);

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Slots, for sampling and sweeping in place: entryAt() is nullptr for an empty slot.
  std::size_t slotCount() const { return slots_.size(); }
  AccountEntry* entryAt(std::size_t slot) const { return slots_[slot].entry; }
  std::uint64_t hashAt(std::size_t slot) const { return slots_[slot].hash; }

  template <class F>
  void forEach(F&& f) const {
    for (const auto& slot : slots_) {
      if (slot.entry != nullptr) f(*slot.entry);
    }
  }

 private:
  struct Slot {
    std::uint64_t hash = 0;
    AccountEntry* entry = nullptr;
  };
  std::size_t home(std::uint64_t hash) const {
    return static_cast<std::size_t>((hash * 0x9e3779b97f4a7c15ull) >> shift_);
  }
  void grow();

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
  unsigned shift_ = 64;  // 64 - log2(slot count)
};

// The one hash of an account name: it picks the shard and the slot.
inline std::uint64_t accountHash(std::string_view account) {
  return std::hash<std::string_view>{}(account);
}

}  // namespace saslguard::store
