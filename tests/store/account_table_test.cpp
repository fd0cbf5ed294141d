// account_table_test.cpp — the open-addressing account table against std::unordered_map, with
// real hashes and with hashes forced to collide (long probe runs, deletions that must shift
// entries back across the end of the slot array).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <unordered_map>

#include "store/account_table.hpp"

namespace saslguard::store {
namespace {

// Runs random inserts and erases, checking every key after each step against a reference map.
void checkAgainstReference(std::uint64_t (*hashOf)(const std::string&)) {
  AccountTable table;
  std::unordered_map<std::string, std::uint32_t> reference;  // key -> last_active_s marker
  std::mt19937 random(42);
  for (int step = 0; step <= 4000; ++step) {
    const std::string key = "user" + std::to_string(random() % 300) + "@example.org";
    const std::uint64_t hash = hashOf(key);
    if (random() % 3 != 0) {
      auto [entry, inserted] = table.insert(key, hash);
      ASSERT_EQ(inserted, !reference.contains(key)) << key;
      ASSERT_EQ(entry->key(), key);
      entry->state.last_active_s = static_cast<std::uint32_t>(step);
      reference[key] = static_cast<std::uint32_t>(step);
    } else if (AccountEntry* entry = table.find(key, hash)) {
      ASSERT_TRUE(reference.contains(key));
      table.erase(entry, hash);
      reference.erase(key);
    } else {
      ASSERT_FALSE(reference.contains(key)) << key;
    }
    ASSERT_EQ(table.size(), reference.size());
    if (step % 50 != 0) continue;
    for (const auto& [present, marker] : reference) {
      AccountEntry* entry = table.find(present, hashOf(present));
      ASSERT_NE(entry, nullptr) << present << " lost at step " << step;
      ASSERT_EQ(entry->state.last_active_s, marker);
    }
  }
  std::size_t visited = 0;
  table.forEach([&](const AccountEntry& entry) {
    ++visited;
    EXPECT_TRUE(reference.contains(std::string(entry.key())));
  });
  EXPECT_EQ(visited, reference.size());
}

TEST(AccountTable, BehavesLikeAMap) {
  checkAgainstReference([](const std::string& key) { return accountHash(key); });
}

TEST(AccountTable, SurvivesCollidingHashes) {
  // Eight distinct hashes for all keys, several with the same full hash: long probe runs that
  // wrap around the end of the table.
  checkAgainstReference([](const std::string& key) { return accountHash(key) % 8; });
}

TEST(AccountTable, KeepsEntriesInPlaceWhenGrowing) {
  AccountTable table;
  AccountEntry* first = table.insert("first", accountHash("first")).first;
  for (int i = 0; i < 10000; ++i) {
    const std::string key = "a" + std::to_string(i);
    table.insert(key, accountHash(key));
  }
  EXPECT_EQ(table.find("first", accountHash("first")), first) << "entries never move";
  EXPECT_GE(table.slotCount() * 3, table.size() * 4) << "at most 3/4 full";
}

TEST(AccountTable, StoresLongAndEmptyKeys) {
  AccountTable table;
  const std::string long_key(480, 'x');
  table.insert(long_key, accountHash(long_key));
  table.insert("", accountHash(""));
  EXPECT_EQ(table.find(long_key, accountHash(long_key))->key(), long_key);
  EXPECT_EQ(table.find("", accountHash(""))->key(), "");
  EXPECT_EQ(table.find("y", accountHash("y")), nullptr);
}

}  // namespace
}  // namespace saslguard::store
