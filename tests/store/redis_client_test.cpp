// redis_client_test.cpp — the RESP2 client against a real redis-server on a free loopback port:
// replies of every type, pipelining, many coroutines at once, AUTH and SELECT, a server killed
// and restarted, a server stopped with SIGSTOP (every command fails within its timeout).
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "redis_test_util.hpp"
#include "support/child_process.hpp"
#include "support/redis.hpp"

namespace saslguard::store::testing {
namespace {

using saslguard::testing::redisQuery;
using saslguard::testing::RedisServer;
using saslguard::testing::RedisServerOptions;

TEST(RedisReplyParsing, ParsesEveryReplyType) {
  RedisServer server;
  IoThread io;
  auto client = makeClient(io, optionsFor(server.port()));
  ASSERT_TRUE(client);

  auto set = client->commandBlocking({"SET", "greeting", std::string("hello\r\nworld\0!", 14)});
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_TRUE(set->isStatus("OK")) << set->describe();

  auto get = client->commandBlocking({"GET", "greeting"});
  ASSERT_TRUE(get) << get.error().message;
  EXPECT_EQ(get->type, RedisReply::Type::kString);
  EXPECT_EQ(get->text, std::string("hello\r\nworld\0!", 14)) << "binary-safe both ways";

  auto missing = client->commandBlocking({"GET", "nobody"});
  ASSERT_TRUE(missing);
  EXPECT_TRUE(missing->isNil()) << missing->describe();

  auto incremented = client->commandBlocking({"INCRBY", "counter", "41"});
  ASSERT_TRUE(incremented);
  EXPECT_EQ(incremented->type, RedisReply::Type::kInteger);
  EXPECT_EQ(incremented->integer, 41);

  ASSERT_TRUE(client->commandBlocking({"RPUSH", "list", "a", "b", "c"}));
  auto range = client->commandBlocking({"LRANGE", "list", "0", "-1"});
  ASSERT_TRUE(range);
  EXPECT_EQ(range->describe(), "[a, b, c]");

  auto wrong_type = client->commandBlocking({"INCR", "list"});
  ASSERT_TRUE(wrong_type) << "an error reply is a reply, not a failure";
  EXPECT_TRUE(wrong_type->isErrorCode("WRONGTYPE")) << wrong_type->describe();
  EXPECT_FALSE(wrong_type->isErrorCode("WRONG"));

  auto unknown = client->commandBlocking({"NOSUCHCOMMAND"});
  ASSERT_TRUE(unknown);
  EXPECT_TRUE(unknown->isErrorCode("ERR")) << unknown->describe();
}

TEST(RedisEndpointParsing, AcceptsHostPortForms) {
  auto plain = parseRedisEndpoint("redis.example:6380", 6379);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->host, "redis.example");
  EXPECT_EQ(plain->port, 6380);
  auto bare = parseRedisEndpoint("10.0.0.1", 26379);
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->port, 26379);
  auto ipv6 = parseRedisEndpoint("[::1]:7000", 6379);
  ASSERT_TRUE(ipv6);
  EXPECT_EQ(ipv6->host, "::1");
  EXPECT_EQ(ipv6->describe(), "[::1]:7000");
  EXPECT_FALSE(parseRedisEndpoint("host:0", 6379));
  EXPECT_FALSE(parseRedisEndpoint("host:http", 6379));
  EXPECT_FALSE(parseRedisEndpoint("[::1", 6379));
  EXPECT_FALSE(parseRedisEndpoint(":6379", 6379));
}

TEST(RedisClient, PipelineRepliesComeBackInOrder) {
  RedisServer server;
  IoThread io;
  auto client = makeClient(io, optionsFor(server.port()));
  ASSERT_TRUE(client);
  RedisPipeline commands;
  for (int i = 0; i < 500; ++i) commands.add({"INCR", "sequence"});
  commands.add({"GET", "sequence"});
  auto replies = client->pipelineBlocking(std::move(commands));
  ASSERT_TRUE(replies) << replies.error().message;
  ASSERT_EQ(replies->size(), 501u);
  for (int i = 0; i < 500; ++i) EXPECT_EQ((*replies)[i].integer, i + 1);
  EXPECT_EQ(replies->back().text, "500");
}

TEST(RedisClient, ManyConcurrentCoroutinesEachGetTheirOwnReply) {
  RedisServer server;
  IoThread io;
  auto options = optionsFor(server.port());
  options.pool_size = 3;
  options.command_timeout = 5s;  // a loaded 2-core machine must not turn this into a timeout test
  auto client = makeClient(io, options);
  ASSERT_TRUE(client);

  constexpr int kCoroutines = 2000;
  std::atomic<int> mismatches{0};
  std::atomic<int> failures{0};
  std::atomic<int> finished{0};
  auto one = [&](int i) -> asio::awaitable<void> {
    const auto key = "key:" + std::to_string(i);
    const auto value = "value:" + std::to_string(i * 7919);
    auto set = co_await client->command("SET", key, value);
    auto get = co_await client->command("GET", key);
    auto total = co_await client->command("INCR", "total");
    if (!set || !get || !total) {
      ++failures;
    } else if (!set->isStatus() || get->text != value ||
               total->type != RedisReply::Type::kInteger) {
      ++mismatches;
    }
    ++finished;
  };
  const auto start = SteadyClock::now();
  for (int i = 0; i < kCoroutines; ++i) asio::co_spawn(io.context(), one(i), asio::detached);
  const auto deadline = SteadyClock::now() + 20s;
  while (finished.load() < kCoroutines && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  const auto elapsed_ms = millisSince(start);
  ASSERT_EQ(finished.load(), kCoroutines);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(redisQuery(server.port(), {"GET", "total"}), std::to_string(kCoroutines));
  std::printf("[ measure  ] %d coroutines x 3 commands on 3 connections: %lld ms\n", kCoroutines,
              static_cast<long long>(elapsed_ms));
}

TEST(RedisClient, CallsFromManyThreadsAreSafe) {
  RedisServer server;
  IoThread io;
  auto options = optionsFor(server.port());
  options.command_timeout = 5s;
  auto client = makeClient(io, options);
  ASSERT_TRUE(client);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 250; ++i) {
        if (auto reply = client->commandBlocking({"INCR", "hits"}); !reply || reply->isError()) {
          ++failures;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(redisQuery(server.port(), {"GET", "hits"}), "1000");
}

TEST(RedisClient, AuthenticatesWithPasswordOrUserAndPassword) {
  RedisServer server(RedisServerOptions::withPassword("s3cret"));
  ASSERT_EQ(server.query({"ACL", "SETUSER", "policy", "on", ">userpass", "~*", "+@all"}), "OK");
  IoThread io;

  auto options = optionsFor(server.port());
  options.password = "s3cret";
  auto by_password = makeClient(io, options);
  auto set = by_password->commandBlocking({"SET", "k", "v"});
  EXPECT_TRUE(set && set->isStatus()) << describe(set);

  options.username = "policy";
  options.password = "userpass";
  auto by_user = makeClient(io, options);
  auto get = by_user->commandBlocking({"GET", "k"});
  ASSERT_TRUE(get) << get.error().message;
  EXPECT_EQ(get->text, "v");
  auto whoami = by_user->commandBlocking({"ACL", "WHOAMI"});
  EXPECT_EQ(describe(whoami), "policy");
}

TEST(RedisClient, WrongOrMissingPasswordFailsWithTheReason) {
  RedisServer server(RedisServerOptions::withPassword("s3cret"));
  IoThread io;

  auto options = optionsFor(server.port());
  options.password = "wrong";
  auto wrong = makeClient(io, options);
  auto refused = wrong->commandBlocking({"PING"});
  ASSERT_FALSE(refused) << refused->describe();
  EXPECT_NE(refused.error().message.find("refused AUTH"), std::string::npos)
      << refused.error().message;
  EXPECT_NE(refused.error().message.find("WRONGPASS"), std::string::npos)
      << refused.error().message;

  auto missing = makeClient(io, optionsFor(server.port()));
  auto unauthenticated = missing->commandBlocking({"GET", "k"});
  ASSERT_FALSE(unauthenticated);
  EXPECT_NE(unauthenticated.error().message.find("NOAUTH"), std::string::npos)
      << unauthenticated.error().message;

  // While the backoff lasts, commands fail at once with the same reason instead of reconnecting.
  const auto start = SteadyClock::now();
  auto again = wrong->commandBlocking({"PING"});
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("WRONGPASS"), std::string::npos) << again.error().message;
  EXPECT_LT(millisSince(start), 100);
}

TEST(RedisClient, SelectsTheConfiguredDatabase) {
  RedisServer server;
  IoThread io;
  auto options = optionsFor(server.port());
  options.database = 3;
  auto in_three = makeClient(io, options);
  ASSERT_TRUE(in_three->commandBlocking({"SET", "where", "three"}));
  auto in_zero = makeClient(io, optionsFor(server.port()));
  auto from_zero = in_zero->commandBlocking({"GET", "where"});
  ASSERT_TRUE(from_zero);
  EXPECT_TRUE(from_zero->isNil()) << from_zero->describe();
  const auto keyspace = server.query({"INFO", "keyspace"});
  ASSERT_TRUE(keyspace);
  EXPECT_NE(keyspace->find("db3:keys=1,"), std::string::npos) << *keyspace;
  EXPECT_EQ(keyspace->find("db0:"), std::string::npos) << *keyspace;

  options.database = 99;  // Redis has 16 by default
  auto out_of_range = makeClient(io, options);
  auto refused = out_of_range->commandBlocking({"GET", "where"});
  ASSERT_FALSE(refused) << "a failed SELECT must not fall back to database 0";
  EXPECT_NE(refused.error().message.find("SELECT 99"), std::string::npos)
      << refused.error().message;
}

// Retries `command` until it succeeds or `timeout` passes; returns how long it took (or -1).
long long untilSuccess(RedisClient& client, std::initializer_list<std::string_view> command,
                       std::chrono::milliseconds timeout) {
  const auto start = SteadyClock::now();
  while (SteadyClock::now() - start < timeout) {
    auto reply = client.commandBlocking(command);
    if (reply && !reply->isError()) return millisSince(start);
    std::this_thread::sleep_for(10ms);
  }
  return -1;
}

TEST(RedisClient, ReconnectsAfterTheServerRestarts) {
  RedisServer server;
  IoThread io;
  auto client = makeClient(io, optionsFor(server.port()));
  ASSERT_TRUE(client->commandBlocking({"SET", "before", "1"}));

  server.stop();
  const auto start = SteadyClock::now();
  auto down = client->commandBlocking({"GET", "before"});
  EXPECT_FALSE(down) << down->describe();
  EXPECT_LT(millisSince(start), 400) << "a refused connection fails within the command timeout";

  server.start();
  const auto took_ms = untilSuccess(*client, {"SET", "after", "1"}, 5s);
  ASSERT_GE(took_ms, 0) << "no reconnect within 5 s";
  std::printf("[ measure  ] reconnected %lld ms after the restart\n", took_ms);

  server.kill();  // a crash this time: the connection is reset, not closed politely
  server.start();
  ASSERT_GE(untilSuccess(*client, {"PING"}, 5s), 0);
  EXPECT_GE(client->stats().connects, 3u);
}

TEST(RedisClient, UnreachableServerFailsFast) {
  const auto port = saslguard::testing::freeLoopbackPort();  // nobody listens there
  IoThread io;
  auto client = makeClient(io, optionsFor(port));
  const auto start = SteadyClock::now();
  for (int i = 0; i < 20; ++i) {
    auto reply = client->commandBlocking({"PING"});
    EXPECT_FALSE(reply);
  }
  EXPECT_LT(millisSince(start), 1000);
  EXPECT_GE(client->stats().failures, 20u);
}

TEST(RedisClient, StoppedServerFailsEveryCommandWithinItsTimeoutThenRecovers) {
  RedisServer server;
  IoThread io;
  auto options = optionsFor(server.port());
  options.command_timeout = 200ms;
  options.connect_timeout = 300ms;
  options.pool_size = 2;
  auto client = makeClient(io, options);
  ASSERT_TRUE(client->commandBlocking({"SET", "k", "v"}));

  server.pause();
  // Concurrent commands (pipelined on the live connections) and then a stream of single ones,
  // across the reconnects that the timeouts cause.
  std::atomic<int> succeeded{0};
  std::atomic<int> failed{0};
  std::atomic<long long> slowest_ms{0};
  std::atomic<int> finished{0};
  auto timed = [&]() -> asio::awaitable<void> {
    const auto start = SteadyClock::now();
    auto reply = co_await client->command("GET", "k");
    const auto took = millisSince(start);
    (reply ? succeeded : failed)++;
    long long seen = slowest_ms.load();
    while (took > seen && !slowest_ms.compare_exchange_weak(seen, took)) {
    }
    ++finished;
  };
  for (int i = 0; i < 50; ++i) asio::co_spawn(io.context(), timed(), asio::detached);
  const auto stream_end = SteadyClock::now() + 1500ms;
  int streamed = 0;
  while (SteadyClock::now() < stream_end) {
    io.run(timed());
    ++streamed;
    std::this_thread::sleep_for(10ms);  // pacing, so the stream spans several reconnect tries
  }
  const auto deadline = SteadyClock::now() + 5s;
  while (finished.load() < 50 + streamed && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(finished.load(), 50 + streamed);
  EXPECT_EQ(succeeded.load(), 0);
  EXPECT_EQ(failed.load(), 50 + streamed);
  EXPECT_LE(slowest_ms.load(), 200 + 150) << "a command outlived its timeout";
  EXPECT_GE(client->stats().timeouts, 1u);
  std::printf("[ measure  ] paused server: %d commands failed, slowest after %lld ms\n",
              failed.load(), slowest_ms.load());

  server.resume();
  const auto took_ms = untilSuccess(*client, {"GET", "k"}, 5s);
  ASSERT_GE(took_ms, 0) << "no recovery within 5 s of SIGCONT";
  EXPECT_EQ(describe(client->commandBlocking({"GET", "k"})), "v");
  std::printf("[ measure  ] recovered %lld ms after SIGCONT\n", took_ms);
}

TEST(RedisClient, ShutdownFailsCommandsInFlight) {
  RedisServer server;
  auto io = std::make_unique<IoThread>();
  auto client = makeClient(*io, optionsFor(server.port()));
  ASSERT_TRUE(client->commandBlocking({"PING"}));
  server.pause();
  auto pending = asio::co_spawn(io->context(), client->command("GET", "k"), asio::use_future);
  client.reset();  // closes the connections; the command must complete, not hang
  ASSERT_EQ(pending.wait_for(2s), std::future_status::ready);
  EXPECT_FALSE(pending.get());
  server.resume();
}

TEST(RedisClientMeasure, RoundTripAndPipelinedThroughput) {
  RedisServer server;
  IoThread io;
  auto options = optionsFor(server.port());
  options.command_timeout = 10s;
  options.pool_size = 1;
  options.max_in_flight = 50000;
  auto client = makeClient(io, options);
  ASSERT_TRUE(client->commandBlocking({"PING"}));

  constexpr int kSequential = 2000;
  const auto sequential_start = SteadyClock::now();
  io.run([&]() -> asio::awaitable<void> {
    for (int i = 0; i < kSequential; ++i) {
      auto reply = co_await client->command("INCR", "sequential");
      EXPECT_TRUE(reply && reply->integer == i + 1);
    }
  }());
  const double round_trip_us =
      std::chrono::duration<double, std::micro>(SteadyClock::now() - sequential_start).count() /
      kSequential;

  constexpr int kConcurrent = 20000;
  std::atomic<int> done{0};
  const auto pipelined_start = SteadyClock::now();
  for (int i = 0; i < kConcurrent; ++i) {
    asio::co_spawn(
        io.context(),
        [&]() -> asio::awaitable<void> {
          auto reply = co_await client->command("INCR", "pipelined");
          EXPECT_TRUE(reply && reply->type == RedisReply::Type::kInteger);
          ++done;
        },
        asio::detached);
  }
  const auto deadline = SteadyClock::now() + 30s;
  while (done.load() < kConcurrent && SteadyClock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  const double seconds =
      std::chrono::duration<double>(SteadyClock::now() - pipelined_start).count();
  ASSERT_EQ(done.load(), kConcurrent);
  EXPECT_EQ(redisQuery(server.port(), {"GET", "pipelined"}), std::to_string(kConcurrent));
  std::printf(
      "[ measure  ] sequential round trip %.1f us; %d concurrent commands on one "
      "connection: %.0f commands/s\n",
      round_trip_us, kConcurrent, kConcurrent / seconds);
}

}  // namespace
}  // namespace saslguard::store::testing
