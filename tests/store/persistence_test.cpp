// persistence_test.cpp — what survives a close and reopen, what is forgotten (idle accounts,
// expired entries), the max_accounts cap, the flusher's error handling, and records of the
// legacy "accounts" database (keyed by account alone) moving to "account-records".
#include <gtest/gtest.h>

#include <thread>

#include "store/account_state.hpp"
#include "store/lmdb.hpp"
#include "store_test_util.hpp"

namespace saslguard::store::testing {
namespace {

using Persistence = StoreTest;

TEST_F(Persistence, StateSurvivesCloseAndReopen) {
  {
    auto store = open();
    ASSERT_TRUE(store->execute(
        batch("alice", {counter("quota:3600", 7, 3600, 60)}, {touch("geo:ips", "192.0.2.1", 3600)}),
        at(0)));
    ASSERT_TRUE(store->execute(
        batch("alice", {counter("quota:3600", 2, 3600, 60)}, {touch("geo:ips", "192.0.2.2", 3600)}),
        at(100)));
    ASSERT_TRUE(store->mark("bob", mark("reputation", "listed"), at(5)));
    ASSERT_TRUE(store->execute(batch("bob", {}), at(6)));  // one refused request
    ASSERT_TRUE(store->close());
  }
  auto store = open(at(200));
  EXPECT_EQ(store->stats().accounts, 2u);
  EXPECT_EQ(store->stats().marks, 1u);
  EXPECT_EQ(total(*store, "alice", "quota:3600", at(200), 3600, 60), 9u);
  auto ips = store->execute(batch("alice", {}, {touch("geo:ips", "", 3600)}), at(200));
  EXPECT_EQ(ips->sets[0].count, 2u);
  auto bob = store->getMark("bob", at(200));
  ASSERT_TRUE(bob && *bob);
  EXPECT_EQ((*bob)->first_seen, at(5));
  EXPECT_EQ((*bob)->hits, 1u) << "hits counted in memory were flushed";
  EXPECT_EQ(store->view("bob", at(200))->audit.size(), 1u);
}

TEST_F(Persistence, ExpiredEntriesAndIdleAccountsAreForgottenOnReopen) {
  {
    auto store = open();
    ASSERT_TRUE(store->execute(batch("idle", {counter("quota", 1, 86400 * 3, 24)}), at(0)));
    ASSERT_TRUE(store->execute(batch("emptied", {counter("quota", 1, 60, 6)}), at(86400)));
    ASSERT_TRUE(store->execute(batch("active", {counter("quota", 1, 86400 * 3, 24)},
                                     {touch("ips", "old", 60), touch("ips2", "new", 86400 * 2)}),
                               at(86400)));
    ASSERT_TRUE(store->mark("marked", mark("reputation", "listed"), at(0)));
    ASSERT_TRUE(store->close());
  }
  auto o = options(at(2 * 86400 + 10));
  o.idle_expiry_s = 2 * 86400;
  auto store = open(o);
  EXPECT_EQ(store->stats().accounts, 2u) << "idle (2 days) and emptied (window over) are gone";
  auto active = store->view("active", at(2 * 86400 + 10));
  ASSERT_EQ(active->counters.size(), 1u);
  EXPECT_EQ(active->counters[0].total, 1u);
  ASSERT_EQ(active->sets.size(), 1u) << "the set whose entries all expired is gone";
  EXPECT_EQ(active->sets[0].name, "ips2");
  EXPECT_TRUE(isMarked(*store, "marked", at(2 * 86400 + 10))) << "marks never idle out";
  ASSERT_TRUE(store->close());

  auto again = open(o);
  EXPECT_EQ(again->stats().accounts, 2u) << "their records were deleted, not just skipped";
}

TEST_F(Persistence, TheFlusherForgetsIdleAccounts) {
  auto o = options();
  o.idle_expiry_s = 3600;
  auto store = open(o);
  ASSERT_TRUE(store->execute(batch("old", {counter("quota", 1, 86400, 24)}), at(0)));
  ASSERT_TRUE(store->mark("marked", mark("reputation", "listed"), at(0)));
  ASSERT_TRUE(store->execute(batch("new", {counter("quota", 1, 86400, 24)}), at(3600)));
  ASSERT_TRUE(store->flush());
  EXPECT_EQ(store->stats().accounts, 2u);
  EXPECT_EQ(total(*store, "old", "quota", at(3600), 86400, 24), 0u);
  EXPECT_EQ(total(*store, "new", "quota", at(3600), 86400, 24), 1u);
}

TEST_F(Persistence, TheCapEvictsTheLeastRecentlyActiveButNeverMarkedAccounts) {
  auto o = options();
  o.max_accounts = 4;
  auto store = open(o);
  ASSERT_TRUE(store->mark("marked", mark("reputation", "listed"), at(0)));
  for (int i = 1; i <= 9; ++i) {
    ASSERT_TRUE(store->execute(batch("a" + std::to_string(i), {counter("quota", 1)}), at(i)));
  }
  ASSERT_TRUE(store->flush());
  auto stats = store->stats();
  EXPECT_EQ(stats.accounts, 4u);
  EXPECT_EQ(stats.evicted, 6u);
  EXPECT_TRUE(isMarked(*store, "marked", at(10)));
  EXPECT_EQ(total(*store, "a9", "quota", at(10)), 1u) << "the most recent account is kept";
  EXPECT_EQ(total(*store, "a1", "quota", at(10)), 0u) << "the oldest is gone";
  ASSERT_TRUE(store->close());

  auto reopened = open(o);
  EXPECT_EQ(reopened->stats().accounts, 4u) << "evicted accounts are deleted on disk too";
}

TEST_F(Persistence, MarkedAccountsAreKeptEvenBeyondTheCap) {
  auto o = options();
  o.max_accounts = 2;
  auto store = open(o);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(store->mark("m" + std::to_string(i), mark("geo", "countries"), at(i)));
  }
  ASSERT_TRUE(store->execute(batch("plain", {counter("quota", 1)}), at(5)));
  ASSERT_TRUE(store->flush());
  EXPECT_EQ(store->stats().marks, 4u);
  EXPECT_EQ(store->stats().accounts, 4u);
  EXPECT_EQ(store->stats().evicted, 1u);
}

TEST_F(Persistence, TheBackgroundFlusherWritesWithoutBeingAsked) {
  auto o = options();
  o.start_flusher = true;
  o.flush_interval_ms = 20;
  auto store = open(o);
  ASSERT_TRUE(store->execute(batch("alice", {counter("quota", 3)}), at(0)));
  for (int i = 0; i < 500 && store->stats().flushes == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // waits for a thread, not time
  }
  EXPECT_GE(store->stats().flushes, 1u);
}

TEST_F(Persistence, AFailedGroupCommitIsCountedAndRetried) {
  auto o = options();
  o.map_size_mb = 1;
  auto store = open(o);
  const std::string value(200, 'v');
  for (int i = 0; i < 20000; ++i) {
    ASSERT_TRUE(store->execute(batch("a" + std::to_string(i), {}, {touch("s", value)}), at(0)));
  }
  auto flushed = store->flush();
  ASSERT_FALSE(flushed) << "4 MB of records do not fit a 1 MB map";
  EXPECT_NE(flushed.error().message.find("state.lmdb_map_size_mb"), std::string::npos);
  EXPECT_EQ(store->stats().flush_errors, 1u);
  EXPECT_EQ(store->stats().flushes, 0u);
  EXPECT_FALSE(store->flush()) << "the accounts are still pending";
  EXPECT_EQ(store->stats().flush_errors, 2u);
}

TEST_F(Persistence, UnreadableRecordsAreSkipped) {
  {
    auto store = open();
    ASSERT_TRUE(store->execute(batch("alice", {counter("quota", 1)}), at(0)));
    ASSERT_TRUE(store->close());
  }
  {
    auto env = lmdb::Env::open(options().dir / "state.mdb", 64, 4);
    ASSERT_TRUE(env);
    auto txn = lmdb::Txn::beginWrite(*env);
    auto accounts = txn->openDb("accounts", false);
    ASSERT_TRUE(accounts);
    ASSERT_TRUE(txn->put(*accounts, "broken", std::string("\x01\x02", 2)));
    ASSERT_TRUE(txn->put(*accounts, "future", std::string("\x07whatever", 9)));
    ASSERT_TRUE(txn->commit());
  }
  auto store = open();
  EXPECT_EQ(store->stats().accounts, 1u);
  EXPECT_EQ(total(*store, "alice", "quota", at(1)), 1u);
}

// What a store of version 0.1 left: its account records keyed by account name alone.
TEST_F(Persistence, RecordsOfTheLegacyAccountsDatabaseMoveToAccountRecords) {
  {
    auto store = open();
    ASSERT_TRUE(store->execute(batch("alice", {counter("quota", 1)}), at(0)));
    ASSERT_TRUE(store->close());
  }
  {
    NameTable names;
    AccountState state;
    state.last_active_s = static_cast<std::uint32_t>(kBaseS);
    state.counters.push_back(NamedWindow{*names.intern("quota"), SlidingWindow(60, 6)});
    state.counters[0].window.apply(5, std::nullopt, kBaseS);
    state.sets.push_back(NamedSet{*names.intern("geo:ips"), DistinctSet{}});
    state.sets[0].set.touch("192.0.2.1", 100, kBaseS, 16);
    std::string bob;
    encodeAccount(state, names, bob);

    auto env = lmdb::Env::open(options().dir / "state.mdb", 64, 8);
    ASSERT_TRUE(env);
    auto txn = lmdb::Txn::beginWrite(*env);
    auto legacy = txn->openDb("accounts", false);
    ASSERT_TRUE(legacy);
    ASSERT_TRUE(txn->put(*legacy, "bob", bob));
    ASSERT_TRUE(txn->put(*legacy, "future", std::string("\x07whatever", 9)));
    ASSERT_TRUE(txn->commit());
  }
  const auto entries = [this](const char* name) -> std::size_t {
    auto env = lmdb::Env::open(options().dir / "state.mdb", 64, 8);
    if (!env) return 999;
    auto txn = lmdb::Txn::beginRead(*env);
    auto db = txn->openDb(name, false);
    return db ? txn->entries(*db).value_or(999) : 999;
  };
  {
    auto store = open();
    EXPECT_EQ(store->stats().accounts, 2u);
    EXPECT_EQ(total(*store, "bob", "quota", at(1)), 5u);
    EXPECT_EQ(total(*store, "alice", "quota", at(1)), 1u);
    ASSERT_TRUE(store->close());
  }
  EXPECT_EQ(entries("accounts"), 0u) << "emptied once moved";
  EXPECT_EQ(entries("account-records"), 3u) << "alice, bob, and the unreadable record kept";
  auto store = open();
  EXPECT_EQ(store->stats().accounts, 2u);
  EXPECT_EQ(total(*store, "bob", "quota", at(2)), 5u);
  auto ips = store->execute(batch("bob", {}, {touch("geo:ips", "", 100)}), at(2));
  ASSERT_TRUE(ips);
  EXPECT_EQ(ips->sets[0].count, 1u);
}

TEST_F(Persistence, ACheckpointKeepsEveryAccountOfManyShards) {
  {
    auto o = options();
    o.checkpoint_interval_s = 0;  // every flush checkpoints
    auto store = open(o);
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 5000; ++i) {
        ASSERT_TRUE(
            store->execute(batch("user" + std::to_string(i), {counter("quota", 1)}), at(round)));
      }
      ASSERT_TRUE(store->flush());
    }
    ASSERT_TRUE(store->close());
  }
  auto store = open(at(3));
  EXPECT_EQ(store->stats().accounts, 5000u);
  for (int i = 0; i < 5000; i += 499) {
    EXPECT_EQ(total(*store, "user" + std::to_string(i), "quota", at(3)), 3u) << i;
  }
}

}  // namespace
}  // namespace saslguard::store::testing
