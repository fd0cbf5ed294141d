// redis_store_test.cpp — the Store on a real redis-server: the same batches give the same
// answers as the embedded store (seeded random sequences run on both, full sets included), the
// registry with the Abusix set (SREM unblocks, SADD blocks), exact counts from two stores in
// parallel and from awaited calls on two io_contexts (each with its own client), NOSCRIPT after a
// script flush, and a failure value when Redis is down.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>

#include "redis_test_util.hpp"
#include "store/redis_store.hpp"
#include "store_test_util.hpp"
#include "support/redis.hpp"

namespace saslguard::store::testing {
namespace {

using saslguard::testing::redisQuery;
using saslguard::testing::RedisServer;

RedisStoreOptions storeOptions(unsigned short port) {
  RedisStoreOptions options;
  options.redis = optionsFor(port);
  // A loaded 2-core machine (or a sanitizer build), not a timeout test.
  options.redis.connect_timeout = 2s;
  options.redis.command_timeout = 2s;
  return options;
}

std::unique_ptr<RedisStore> openRedisStore(const RedisStoreOptions& options) {
  auto store = RedisStore::open(options);
  if (!store) {
    ADD_FAILURE() << store.error().message;
    return nullptr;
  }
  return std::move(*store);
}

std::unique_ptr<RedisStore> openRedisStore(unsigned short port) {
  return openRedisStore(storeOptions(port));
}

CounterOp grouped(std::string name, std::uint64_t amount, std::uint32_t window_s,
                  std::uint32_t buckets, std::uint64_t below, std::uint8_t group) {
  auto op = counter(std::move(name), amount, window_s, buckets, below);
  op.all_or_none_group = group;
  return op;
}

// Both stores' sets hold at most this many entries in the tests of full sets.
constexpr std::uint32_t kSmallSetCap = 3;

RedisStoreOptions cappedRedisOptions(unsigned short port) {
  auto capped = storeOptions(port);
  capped.max_set_entries = kSmallSetCap;
  return capped;
}

class RedisStoreVsEmbedded : public StoreTest {
 protected:
  EmbeddedStoreOptions cappedEmbeddedOptions() {
    auto capped = options();
    capped.max_set_entries = kSmallSetCap;
    return capped;
  }
};

// Runs `steps` seeded random batches (from make_batch) on both stores at the same times and
// compares every counter's and set's answer; returns how many steps agreed.
template <typename MakeBatch>
int compareRandomBatches(Store& redis, Store& embedded, int steps, MakeBatch make_batch) {
  std::mt19937 random(20231114);
  auto pick = [&](int bound) { return static_cast<int>(random() % static_cast<unsigned>(bound)); };
  std::int64_t t = 0;
  for (int step = 0; step < steps; ++step) {
    t += pick(12);  // bursts and pauses, so buckets fill, slide out and sets expire
    Batch b = make_batch(pick);
    auto expected = embedded.execute(b, at(t));
    auto got = redis.execute(b, at(t));
    if (!expected || !got) {
      ADD_FAILURE() << (expected ? got.error().message : expected.error().message);
      return step;
    }
    EXPECT_FALSE(got->mark);
    EXPECT_EQ(got->counters.size(), expected->counters.size());
    EXPECT_EQ(got->sets.size(), expected->sets.size());
    if (::testing::Test::HasFailure()) return step;
    for (std::size_t i = 0; i < expected->counters.size(); ++i) {
      EXPECT_EQ(got->counters[i].total, expected->counters[i].total)
          << "step " << step << " t=" << t << " counter " << i << " " << b.counters[i].name;
      EXPECT_EQ(got->counters[i].added, expected->counters[i].added)
          << "step " << step << " t=" << t << " counter " << i << " " << b.counters[i].name;
    }
    for (std::size_t i = 0; i < expected->sets.size(); ++i) {
      EXPECT_EQ(got->sets[i].count, expected->sets[i].count)
          << "step " << step << " t=" << t << " set " << i << " " << b.sets[i].name;
      EXPECT_EQ(got->sets[i].inserted, expected->sets[i].inserted)
          << "step " << step << " t=" << t << " set " << i << " " << b.sets[i].name;
    }
    if (::testing::Test::HasFailure()) return step;
  }
  return steps;
}

TEST_F(RedisStoreVsEmbedded, RandomBatchesGetTheSameAnswers) {
  RedisServer server;
  auto redis = openRedisStore(server.port());
  auto embedded = open(options());
  ASSERT_TRUE(redis && embedded);
  const std::vector<std::string> accounts{"alice", "bob", "carol"};
  const std::vector<std::string> ips{"192.0.2.1", "192.0.2.2", "2001:db8::1", "198.51.100.7", ""};
  auto make_batch = [&](auto pick) {
    return batch(accounts[pick(3)],
                 {counter("sent", pick(4), 60, 6), counter("capped", 1, 120, 4, std::uint64_t{10}),
                  grouped("quota:day", 1 + pick(2), 300, 10, 15, 1),
                  grouped("quota:hour", 1 + pick(2), 60, 6, 8, 1)},
                 {touch("geo:ips", ips[pick(5)], 50), touch("geo:countries", "DE", 100)});
  };
  EXPECT_EQ(compareRandomBatches(*redis, *embedded, 800, make_batch), 800);
}

// Full sets (a value replacing the least recently seen), and one counter named twice in a
// batch (the second op sees the first one's addition), agree as well.
TEST_F(RedisStoreVsEmbedded, FullSetsAndRepeatedCountersGetTheSameAnswers) {
  RedisServer server;
  auto redis = openRedisStore(cappedRedisOptions(server.port()));
  auto embedded = open(cappedEmbeddedOptions());
  ASSERT_TRUE(redis && embedded);
  const std::vector<std::string> ips{"192.0.2.1",    "192.0.2.2",    "192.0.2.3", "2001:db8::1",
                                     "198.51.100.7", "198.51.100.8", ""};
  auto make_batch = [&](auto pick) {
    return batch(
        pick(2) == 0 ? "alice" : "bob",
        {counter("sent", 1 + pick(3), 60, 6), counter("sent", pick(3), 60, 6, std::uint64_t{20})},
        {touch("geo:ips", ips[pick(7)], 40), touch("geo:ips2", ips[pick(7)], 90)});
  };
  EXPECT_EQ(compareRandomBatches(*redis, *embedded, 600, make_batch), 600);
}

// A full set whose oldest entries were last seen in the same second: both stores let the
// smallest text make room (Redis's ZPOPMIN order), so they keep the same members.
TEST_F(RedisStoreVsEmbedded, EquallyOldEntriesMakeRoomInTheSameOrder) {
  RedisServer server;
  auto redis = openRedisStore(cappedRedisOptions(server.port()));
  auto embedded = open(cappedEmbeddedOptions());
  ASSERT_TRUE(redis && embedded);
  const std::vector<std::pair<std::string, std::int64_t>> touches{
      {"b", 0}, {"a", 0}, {"c", 0}, {"d", 1}, {"b", 2}, {"c", 2}, {"a", 3}, {"d", 3}};
  std::string inserted_redis, inserted_embedded;
  for (const auto& [value, t] : touches) {
    const auto b = batch("alice", {}, {touch("geo:ips", value, 100)});
    auto got = redis->execute(b, at(t));
    auto expected = embedded->execute(b, at(t));
    ASSERT_TRUE(got && expected);
    inserted_redis += got->sets[0].inserted ? value : "-";
    inserted_embedded += expected->sets[0].inserted ? value : "-";
  }
  // d takes a's place (a, b and c tie); a comes back in d's place at 3 (d, at 1, is the oldest).
  EXPECT_EQ(inserted_embedded, "bacd--ad");
  EXPECT_EQ(inserted_redis, inserted_embedded);
}

TEST(RedisStore, RegistryFollowsTheCompromisedAcctsSet) {
  RedisServer server;
  auto store = openRedisStore(server.port());
  ASSERT_TRUE(store);

  auto first = store->mark("alice", mark("reputation", "listed in authbl"), at(0));
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_TRUE(first->is_new);
  auto second = store->mark("alice", mark("geo", "too many countries"), at(5));
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->is_new);
  EXPECT_EQ(second->mark.detector, "reputation") << "the first mark's details stay";
  EXPECT_EQ(second->mark.hits, 1u);
  EXPECT_EQ(second->mark.last_seen, at(5));
  EXPECT_EQ(redisQuery(server.port(), {"SMEMBERS", "compromised_accts"}), "[alice]");

  auto refused = store->execute(batch("alice", {counter("sent", 1)}), at(6));
  ASSERT_TRUE(refused) << refused.error().message;
  ASSERT_TRUE(refused->mark);
  EXPECT_EQ(refused->mark->reason, "listed in authbl");
  EXPECT_EQ(refused->mark->hits, 2u);
  EXPECT_TRUE(refused->counters.empty()) << "a marked account changes no counter";

  // An operator unblocks the Abusix way.
  EXPECT_EQ(redisQuery(server.port(), {"SREM", "compromised_accts", "alice"}), "(integer) 1");
  auto unblocked = store->execute(batch("alice", {counter("sent", 1)}), at(7));
  ASSERT_TRUE(unblocked);
  EXPECT_FALSE(unblocked->mark);
  ASSERT_EQ(unblocked->counters.size(), 1u);
  EXPECT_EQ(unblocked->counters[0].total, 1u);
  auto got = store->getMark("alice", at(8));
  ASSERT_TRUE(got);
  EXPECT_FALSE(*got);

  // ... and blocks the Abusix way.
  EXPECT_EQ(redisQuery(server.port(), {"SADD", "compromised_accts", "bob"}), "(integer) 1");
  auto listed = store->execute(batch("bob", {counter("sent", 1)}), at(9));
  ASSERT_TRUE(listed && listed->mark);
  EXPECT_EQ(listed->mark->detector, "operator");
  auto cleared = store->clear("bob", ClearInfo{"admin", "false positive"}, at(10));
  ASSERT_TRUE(cleared);
  EXPECT_TRUE(*cleared);
  EXPECT_EQ(redisQuery(server.port(), {"SISMEMBER", "compromised_accts", "bob"}), "(integer) 0");
  auto again = store->clear("bob", ClearInfo{"admin", "twice"}, at(11));
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);

  auto view = store->view("alice", at(12));
  ASSERT_TRUE(view) << view.error().message;
  ASSERT_GE(view->audit.size(), 3u);
  EXPECT_EQ(view->audit[0].event, "mark");
  EXPECT_EQ(view->audit[0].at, at(0));
  EXPECT_EQ(view->audit.back().event, "clear");
  EXPECT_EQ(view->audit.back().by, "compromised_accts");
}

TEST(RedisStore, ExpiringMarksLapse) {
  RedisServer server;
  auto store = openRedisStore(server.port());
  ASSERT_TRUE(store->mark("carol", mark("quota", "over quota", at(100)), at(0)));
  auto during = store->execute(batch("carol", {counter("sent", 1)}), at(50));
  ASSERT_TRUE(during && during->mark);
  ASSERT_TRUE(during->mark->expires);
  EXPECT_EQ(*during->mark->expires, at(100));
  auto after = store->execute(batch("carol", {counter("sent", 1)}), at(100));
  ASSERT_TRUE(after);
  EXPECT_FALSE(after->mark);
  EXPECT_EQ(redisQuery(server.port(), {"SISMEMBER", "compromised_accts", "carol"}), "(integer) 0");
}

TEST(RedisStore, ListsMarksInAccountOrderByPage) {
  RedisServer server;
  auto store = openRedisStore(server.port());
  for (const char* account : {"erin", "alice", "dave", "bob", "carol"}) {
    ASSERT_TRUE(store->mark(account, mark("reputation", "listed"), at(0)));
  }
  ASSERT_TRUE(store->mark("frank", mark("quota", "expired", at(5)), at(0)));
  auto page = store->listMarks("", 2, at(10));
  ASSERT_TRUE(page) << page.error().message;
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].first, "alice");
  EXPECT_EQ((*page)[1].first, "bob");
  auto rest = store->listMarks("bob", 10, at(10));
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest->size(), 3u) << "frank's mark expired";
  EXPECT_EQ((*rest)[2].first, "erin");
}

TEST(RedisStore, ForgetSetsDropsOnlyThePrefix) {
  RedisServer server;
  auto store = openRedisStore(server.port());
  ASSERT_TRUE(store->execute(
      batch("alice", {counter("sent", 2, 60, 6)},
            {touch("geo:ips", "192.0.2.1"), touch("geo:countries", "DE"), touch("other", "x")}),
      at(0)));
  auto dropped = store->forgetSets("alice", "geo:", at(1));
  ASSERT_TRUE(dropped) << dropped.error().message;
  EXPECT_EQ(*dropped, 2u);
  auto view = store->view("alice", at(2));
  ASSERT_TRUE(view);
  ASSERT_EQ(view->sets.size(), 1u);
  EXPECT_EQ(view->sets[0].name, "other");
  ASSERT_EQ(view->counters.size(), 1u);
  EXPECT_EQ(view->counters[0].total, 2u);
  auto again = store->forgetSets("alice", "geo:", at(3));
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0u);
}

TEST(RedisStore, ViewLeavesOutExpiredSetEntries) {
  RedisServer server;
  auto store = openRedisStore(server.port());
  ASSERT_TRUE(store->execute(batch("alice", {}, {touch("geo:ips", "192.0.2.1", 100)}), at(0)));
  ASSERT_TRUE(store->execute(batch("alice", {}, {touch("geo:ips", "192.0.2.2", 100)}), at(50)));
  auto early = store->view("alice", at(99));
  ASSERT_TRUE(early) << early.error().message;
  ASSERT_EQ(early->sets.size(), 1u);
  EXPECT_EQ(early->sets[0].entries.size(), 2u);
  auto later = store->view("alice", at(100));  // the first entry is 100 s old: expired
  ASSERT_TRUE(later);
  ASSERT_EQ(later->sets.size(), 1u);
  ASSERT_EQ(later->sets[0].entries.size(), 1u);
  EXPECT_EQ(later->sets[0].entries[0].value, "192.0.2.2");
  EXPECT_EQ(later->sets[0].entries[0].last_seen, at(50));
}

TEST(RedisStore, TwoStoresInParallelCountExactly) {
  RedisServer server;
  auto first = openRedisStore(server.port());
  auto second = openRedisStore(server.port());
  constexpr int kThreadsPerStore = 3;
  constexpr int kRequests = 400;
  constexpr std::uint64_t kCap = 500;
  std::atomic<int> failures{0};
  std::atomic<std::uint64_t> capped_added{0};
  std::vector<std::thread> threads;
  for (auto* store : {first.get(), second.get()}) {
    for (int t = 0; t < kThreadsPerStore; ++t) {
      threads.emplace_back([&, store] {
        for (int i = 0; i < kRequests; ++i) {
          auto result = store->execute(
              batch("shared",
                    {counter("sent", 1, 86400, 100), counter("capped", 1, 86400, 100, kCap)},
                    {touch("ips", "ip" + std::to_string(i % 40))}),
              at(i / 100));
          if (!result) {
            ++failures;
            return;
          }
          if (result->counters[1].added) ++capped_added;
        }
      });
    }
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);
  EXPECT_EQ(capped_added.load(), kCap - 1) << "exactly the amounts below the limit were added";
  auto view = first->view("shared", at(10));
  ASSERT_TRUE(view);
  std::uint64_t sent = 0;
  for (const auto& c : view->counters) {
    if (c.name == "sent") sent = c.total;
  }
  EXPECT_EQ(sent, 2u * kThreadsPerStore * kRequests);
}

// The connections redis-server has open for clients, less the one asking.
int connectedClients(unsigned short port) {
  const auto info = redisQuery(port, {"INFO", "clients"}).value_or("");
  const auto at = info.find("connected_clients:");
  if (at == std::string::npos) return -1;
  return std::atoi(info.c_str() + at + 18) - 1;
}

bool waitForClients(unsigned short port, int expected) {
  for (int i = 0; i < 200; ++i) {
    if (connectedClients(port) == expected) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// A policy worker awaits the store from its own io_context: the script goes out on a client of
// that context (its own connections), not through the store's thread. The clients go away with
// whichever ends first, the context or the store.
TEST(RedisStore, AwaitedCallsUseAClientOfTheCallersContext) {
  RedisServer server;
  auto options = storeOptions(server.port());
  options.redis.pool_size = 2;
  auto store = openRedisStore(options);
  ASSERT_TRUE(store);
  constexpr int kPerContext = 300;
  std::atomic<int> failures{0};
  // The contexts never run out of work (their clients keep reading), so the last request of
  // each stops its context.
  auto drive = [&](boost::asio::io_context& context, int base, std::atomic<int>& left) {
    // Built outside the coroutine: g++ 12 and braced lists inside one do not mix.
    const auto request = batch("shared", {counter("sent", 1, 86400, 100)});
    for (int i = 0; i < kPerContext; ++i) {
      boost::asio::co_spawn(
          context,
          [&, request, when = at(base + i / 100)]() -> boost::asio::awaitable<void> {
            auto result = co_await store->executeAsync(request, when);
            if (!result && failures++ == 0) ADD_FAILURE() << result.error().message;
            if (--left == 0) context.stop();
          },
          boost::asio::detached);
    }
  };
  auto first = std::make_unique<boost::asio::io_context>();
  boost::asio::io_context second;
  std::atomic<int> first_left{kPerContext};
  std::atomic<int> second_left{kPerContext};
  drive(*first, 0, first_left);
  drive(second, 10, second_left);
  std::thread first_thread([&] { first->run(); });
  std::thread second_thread([&] { second.run(); });
  first_thread.join();
  second_thread.join();
  EXPECT_EQ(failures.load(), 0);
  // Two clients of two connections each; the store's own client was not needed (it connects
  // at its first call).
  EXPECT_TRUE(waitForClients(server.port(), 2 * 2)) << connectedClients(server.port());
  first.reset();  // the context ends first: its client with it
  EXPECT_TRUE(waitForClients(server.port(), 2)) << connectedClients(server.port());

  auto view = store->view("shared", at(20));
  ASSERT_TRUE(view) << view.error().message;
  ASSERT_EQ(view->counters.size(), 1u);
  EXPECT_EQ(view->counters[0].total, 2u * kPerContext);
  store.reset();  // the store ends first: its client leaves the context still there
  second.restart();
  second.run_for(500ms);  // the client's shutdown was posted to its context
  EXPECT_TRUE(waitForClients(server.port(), 0)) << connectedClients(server.port());
}

TEST(RedisStore, RegistryChangesWaitForTheReplicaWhenAsked) {
  RedisServer primary;
  RedisServer replica(saslguard::testing::RedisServerOptions::replicaOf(primary.port()));
  ASSERT_TRUE(primary.waitForReplicaAcks(1)) << replica.log();
  auto options = storeOptions(primary.port());
  options.redis.command_timeout = 300ms;
  options.wait_replicas = 1;
  options.wait_timeout = 1000ms;
  auto store = openRedisStore(options);

  auto acknowledged = store->mark("alice", mark("reputation", "listed"), at(0));
  ASSERT_TRUE(acknowledged) << acknowledged.error().message << "\nreplica log:\n"
                            << replica.log() << "\nprimary log:\n"
                            << primary.log();
  EXPECT_EQ(replica.query({"SISMEMBER", "compromised_accts", "alice"}), "(integer) 1")
      << "acknowledged only once the replica has it";

  replica.pause();
  const auto start = SteadyClock::now();
  auto unacknowledged = store->mark("bob", mark("reputation", "listed"), at(1));
  const auto took_ms = millisSince(start);
  replica.resume();
  ASSERT_FALSE(unacknowledged);
  EXPECT_NE(unacknowledged.error().message.find("reached 0 of 1"), std::string::npos)
      << unacknowledged.error().message;
  EXPECT_GE(took_ms, 950);
  EXPECT_LT(took_ms, 300 + 1000 + 200);
  // The request path does not wait for replicas.
  EXPECT_TRUE(store->execute(batch("carol", {counter("sent", 1)}), at(2)));
}

TEST(RedisStore, ReloadsItsScriptAfterAFlush) {
  RedisServer server;
  auto store = openRedisStore(server.port());
  ASSERT_TRUE(store->execute(batch("alice", {counter("sent", 1)}), at(0)));
  ASSERT_EQ(redisQuery(server.port(), {"SCRIPT", "FLUSH"}), "OK");
  auto after = store->execute(batch("alice", {counter("sent", 1)}), at(1));
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(after->counters[0].total, 2u);
}

TEST(RedisStore, RedisDownIsAFailureValue) {
  RedisServer server;
  auto store = openRedisStore(server.port());
  server.stop();
  const auto start = SteadyClock::now();
  auto result = store->execute(batch("alice", {counter("sent", 1)}), at(0));
  EXPECT_FALSE(result);
  EXPECT_FALSE(store->mark("alice", mark("reputation", "x"), at(0)));
  EXPECT_LT(millisSince(start), 1000);
}

TEST(RedisStoreMeasure, RequestRoundTrip) {
  RedisServer server;
  auto store = openRedisStore(server.port());
  auto request = [](int i) {
    return batch("user" + std::to_string(i % 100),
                 {counter("quota:day", 1, 86400, 100, std::uint64_t{1000}),
                  counter("quota:hour", 1, 3600, 60, std::uint64_t{100})},
                 {touch("geo:ips", "192.0.2." + std::to_string(i % 7), 3600),
                  touch("geo:countries", i % 3 == 0 ? "DE" : "FR", 3600)});
  };
  ASSERT_TRUE(store->execute(request(0), at(0)));  // loads the script

  constexpr int kSequential = 2000;
  const auto sequential_start = SteadyClock::now();
  for (int i = 0; i < kSequential; ++i) ASSERT_TRUE(store->execute(request(i), at(i / 10)));
  const double sequential_us =
      std::chrono::duration<double, std::micro>(SteadyClock::now() - sequential_start).count() /
      kSequential;

  // Four request threads, as a daemon's workers would call it.
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  const auto parallel_start = SteadyClock::now();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kSequential; ++i) {
        if (!store->execute(request(t * kSequential + i), at(200 + i / 10))) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - parallel_start).count();
  EXPECT_EQ(failures.load(), 0);
  std::printf(
      "[ measure  ] RedisStore::execute (2 counters + 2 sets): %.1f us sequential; "
      "%.0f requests/s from %d threads\n",
      sequential_us, kThreads * kSequential / seconds, kThreads);
  const auto stats = redisQuery(server.port(), {"INFO", "commandstats"}).value_or("");
  const auto evalsha = stats.find("cmdstat_evalsha:");
  ASSERT_NE(evalsha, std::string::npos) << "every request is one EVALSHA";
  std::printf("[ measure  ] server side: %s\n",
              stats.substr(evalsha, stats.find('\r', evalsha) - evalsha).c_str());
}

}  // namespace
}  // namespace saslguard::store::testing
