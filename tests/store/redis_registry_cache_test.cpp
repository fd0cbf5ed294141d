// redis_registry_cache_test.cpp — the Redis store's local registry cache on a real redis-server:
// filled by script replies and by the registry channel (another store's mark and clear arrive
// without a request), a redis-cli SREM seen at the next request, and a resubscription that drops
// the marks cleared meanwhile.
#include <gtest/gtest.h>

#include <thread>

#include "redis_test_util.hpp"
#include "store/redis_store.hpp"
#include "store/registry_cache.hpp"
#include "support/redis.hpp"

namespace saslguard::store::testing {
namespace {

using saslguard::testing::RedisServer;

std::unique_ptr<RedisStore> openCachingStore(unsigned short port, int database = 0) {
  RedisStoreOptions options;
  options.redis = optionsFor(port);
  options.redis.database = database;
  options.redis.command_timeout = 2s;
  options.registry_cache_entries = 1000;
  auto store = RedisStore::open(std::move(options));
  if (!store) {
    ADD_FAILURE() << store.error().message;
    return nullptr;
  }
  return std::move(*store);
}

// Polls `condition` every 5 ms for up to `timeout`.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = 3s) {
  const auto deadline = SteadyClock::now() + timeout;
  while (SteadyClock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return condition();
}

Mark operatorMark(std::string action) {
  Mark mark;
  mark.detector = "operator";
  mark.reason = "test";
  mark.evidence = "{}";
  mark.action = std::move(action);
  return mark;
}

Batch requestFor(std::string account) {
  Batch batch;
  batch.account = std::move(account);
  return batch;
}

TEST(RegistryCache, BoundedAndCleared) {
  RegistryCache cache(32);
  for (int i = 0; i < 100; ++i) cache.marked("user" + std::to_string(i), "REJECT");
  EXPECT_LE(cache.size(), 32u + 15u);  // per-shard bound, rounded up
  EXPECT_GT(cache.size(), 0u);
  cache.marked("alice", "HOLD");
  EXPECT_EQ(cache.action("alice"), "HOLD");
  cache.marked("alice", "DUNNO");
  EXPECT_EQ(cache.action("alice"), "DUNNO");
  cache.cleared("alice");
  EXPECT_EQ(cache.action("alice"), std::nullopt);
  cache.retainOnly({});
  EXPECT_EQ(cache.size(), 0u);

  RegistryCache off(0);
  off.marked("alice", "REJECT");
  EXPECT_EQ(off.action("alice"), std::nullopt);
}

TEST(RedisRegistryCache, AnotherStoresMarksArriveOverTheChannel) {
  RedisServer server;
  auto first = openCachingStore(server.port());
  auto second = openCachingStore(server.port());
  ASSERT_TRUE(first && second);
  ASSERT_TRUE(eventually([&] {
    return first->registryChannelStats().subscribed && second->registryChannelStats().subscribed;
  }));
  const auto now = Clock::now();

  ASSERT_TRUE(first->mark("alice", operatorMark("HOLD"), now));
  EXPECT_EQ(first->registryCache().action("alice"), "HOLD");  // its own reply
  // The second store never asked about alice.
  EXPECT_TRUE(eventually([&] { return second->registryCache().action("alice") == "HOLD"; }));

  ASSERT_TRUE(first->clear("alice", ClearInfo{"test", "done"}, now));
  EXPECT_EQ(first->registryCache().action("alice"), std::nullopt);
  EXPECT_TRUE(eventually([&] { return !second->registryCache().action("alice"); }));

  // A registry member added by hand is learnt from the script's reply; SREM by hand from the
  // next request's reply (and that request announces it to the others).
  ASSERT_EQ(server.query({"SADD", "compromised_accts", "bob"}), "(integer) 1");
  auto seen = second->execute(requestFor("bob"), now);
  ASSERT_TRUE(seen && seen->mark);
  EXPECT_EQ(second->registryCache().action("bob"), "REJECT");
  ASSERT_TRUE(first->mark("carol", operatorMark("REJECT"), now));
  ASSERT_TRUE(eventually([&] { return second->registryCache().action("carol").has_value(); }));
  ASSERT_EQ(server.query({"SREM", "compromised_accts", "carol"}), "(integer) 1");
  EXPECT_EQ(second->registryCache().action("carol"), "REJECT");  // nobody asked yet
  auto unblocked = first->execute(requestFor("carol"), now);
  ASSERT_TRUE(unblocked && !unblocked->mark);
  EXPECT_TRUE(eventually([&] { return !second->registryCache().action("carol"); }));
  EXPECT_GE(second->registryChannelStats().messages, 3u);
}

// Pub/sub ignores databases: two deployments on one Redis, the same set name in databases 0 and
// 1, must not fill each other's caches.
TEST(RedisRegistryCache, AnotherDatabasesMarksStayOutOfTheCache) {
  RedisServer server;
  auto zero = openCachingStore(server.port(), 0);
  auto other_zero = openCachingStore(server.port(), 0);
  auto one = openCachingStore(server.port(), 1);
  ASSERT_TRUE(zero && other_zero && one);
  EXPECT_EQ(registryChannel(RedisStoreOptions{}), "compromised_accts:db0");
  ASSERT_TRUE(eventually([&] {
    return other_zero->registryChannelStats().subscribed && one->registryChannelStats().subscribed;
  }));
  const auto now = Clock::now();
  ASSERT_TRUE(zero->mark("alice", operatorMark("HOLD"), now));
  // The same database hears it; then the other database has had every chance to.
  ASSERT_TRUE(eventually([&] { return other_zero->registryCache().action("alice") == "HOLD"; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(one->registryCache().action("alice"), std::nullopt);
  EXPECT_EQ(one->registryChannelStats().messages, 0u);
  auto seen_from_one = one->getMark("alice", now);
  ASSERT_TRUE(seen_from_one) << seen_from_one.error().message;
  EXPECT_FALSE(seen_from_one->has_value()) << "database 1 has no mark for alice";
}

TEST(RedisRegistryCache, ResubscribesAndDropsWhatWasClearedMeanwhile) {
  RedisServer server;
  auto store = openCachingStore(server.port());
  ASSERT_TRUE(store);
  ASSERT_TRUE(eventually([&] { return store->registryChannelStats().subscribed; }));
  const auto now = Clock::now();
  ASSERT_TRUE(store->mark("alice", operatorMark("REJECT"), now));
  ASSERT_TRUE(store->mark("bob", operatorMark("REJECT"), now));

  // alice is unblocked by hand while the subscription is gone: on resubscribing, the store
  // reads the registry set again.
  ASSERT_EQ(server.query({"SREM", "compromised_accts", "alice"}), "(integer) 1");
  ASSERT_EQ(server.query({"CLIENT", "KILL", "TYPE", "pubsub"}), "(integer) 1");
  EXPECT_TRUE(eventually([&] { return store->registryChannelStats().subscriptions >= 2; }));
  EXPECT_TRUE(eventually([&] { return !store->registryCache().action("alice"); }));
  EXPECT_EQ(store->registryCache().action("bob"), "REJECT");

  // Redis gone: the store fails, the cache still knows bob.
  server.stop();
  EXPECT_FALSE(store->execute(requestFor("bob"), now));
  EXPECT_EQ(store->registryCache().action("bob"), "REJECT");
}

}  // namespace
}  // namespace saslguard::store::testing
