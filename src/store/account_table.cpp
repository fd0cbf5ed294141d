// account_table.cpp — see account_table.hpp. The table stays at most 3/4 full; slot positions
// come from Fibonacci hashing of the full hash, because its low bits already chose the shard.
#include "store/account_table.hpp"

#include <cstring>
#include <new>

namespace saslguard::store {

AccountEntry* AccountEntry::create(std::string_view key) {
  void* memory = ::operator new(sizeof(AccountEntry) + key.size());
  auto* entry = new (memory) AccountEntry();
  entry->key_size_ = static_cast<std::uint32_t>(key.size());
  std::memcpy(static_cast<char*>(memory) + sizeof(AccountEntry), key.data(), key.size());
  return entry;
}

void AccountEntry::destroy(AccountEntry* entry) {
  entry->~AccountEntry();
  ::operator delete(entry);
}

AccountTable::~AccountTable() {
  for (auto& slot : slots_) {
    if (slot.entry != nullptr) AccountEntry::destroy(slot.entry);
  }
}

AccountEntry* AccountTable::find(std::string_view key, std::uint64_t hash) const {
  if (size_ == 0) return nullptr;
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = home(hash);; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.entry == nullptr) return nullptr;
    if (slot.hash == hash && slot.entry->key() == key) return slot.entry;
  }
}

std::pair<AccountEntry*, bool> AccountTable::insert(std::string_view key, std::uint64_t hash) {
  if (AccountEntry* existing = find(key, hash)) return {existing, false};
  if ((size_ + 1) * 4 > slots_.size() * 3) grow();
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = home(hash);
  while (slots_[i].entry != nullptr) i = (i + 1) & mask;
  slots_[i] = Slot{hash, AccountEntry::create(key)};
  ++size_;
  return {slots_[i].entry, true};
}

void AccountTable::erase(AccountEntry* entry, std::uint64_t hash) {
  const std::size_t mask = slots_.size() - 1;
  std::size_t hole = home(hash);
  while (slots_[hole].entry != entry) hole = (hole + 1) & mask;
  AccountEntry::destroy(entry);
  --size_;
  // Backward shift: pull later entries of the probe run into the hole when that brings them no
  // further from their home slot, so lookups never need tombstones.
  for (std::size_t next = (hole + 1) & mask; slots_[next].entry != nullptr;
       next = (next + 1) & mask) {
    const std::size_t wanted = home(slots_[next].hash);
    const bool movable =
        (next > hole) ? (wanted <= hole || wanted > next) : (wanted <= hole && wanted > next);
    if (movable) {
      slots_[hole] = slots_[next];
      hole = next;
    }
  }
  slots_[hole] = Slot{};
}

void AccountTable::reserve(std::size_t accounts) {
  while (accounts * 4 > slots_.size() * 3) grow();
}

void AccountTable::grow() {
  std::vector<Slot> old = std::move(slots_);
  const std::size_t count = old.empty() ? 16 : old.size() * 2;
  slots_.assign(count, Slot{});
  shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(count));
  const std::size_t mask = count - 1;
  for (const Slot& slot : old) {
    if (slot.entry == nullptr) continue;
    std::size_t i = home(slot.hash);
    while (slots_[i].entry != nullptr) i = (i + 1) & mask;
    slots_[i] = slot;
  }
}

}  // namespace saslguard::store
