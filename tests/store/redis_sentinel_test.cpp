// redis_sentinel_test.cpp — the client under Sentinel with a real primary, replica and
// redis-sentinel on loopback: it finds the primary (skipping a dead sentinel), follows the
// promoted replica when the primary is killed, and follows a manual failover too.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "redis_test_util.hpp"
#include "support/child_process.hpp"
#include "support/redis.hpp"

namespace saslguard::store::testing {
namespace {

using saslguard::testing::RedisSentinelServer;
using saslguard::testing::RedisServer;
using saslguard::testing::RedisServerOptions;

// A primary, one replica in sync with it, and a sentinel that already knows the replica (it
// learns replicas from the primary's INFO, at once when it starts, so the replica comes first).
class SentinelSetup : public ::testing::Test {
 protected:
  void SetUp() override {
    replica_ = std::make_unique<RedisServer>(RedisServerOptions::replicaOf(primary_.port()));
    ASSERT_TRUE(primary_.waitForReplicaAcks(1)) << replica_->log();
    sentinel_ = std::make_unique<RedisSentinelServer>(primary_.port());
    ASSERT_TRUE(sentinel_->waitForReplicas(1)) << sentinel_->log();
  }

  RedisOptions clientOptions() {
    auto options = optionsFor(0);
    // The first sentinel is dead: discovery must go on to the next one.
    options.sentinels = {RedisEndpoint{"127.0.0.1", saslguard::testing::freeLoopbackPort()},
                         RedisEndpoint{"127.0.0.1", sentinel_->port()}};
    options.master_name = "mymaster";
    options.sentinel_timeout = 300ms;
    // Discovery (a dead sentinel, then the live one), connect and handshake within one call:
    // 300 ms is too tight on a loaded machine, and these tests are not about the timeout.
    options.command_timeout = 2s;
    return options;
  }

  std::string primaryAddress() const { return "127.0.0.1:" + std::to_string(primary_.port()); }
  std::string replicaAddress() const { return "127.0.0.1:" + std::to_string(replica_->port()); }

  // Writes until a write succeeds; returns how long that took, -1 after `timeout`.
  long long untilWritable(RedisClient& client, std::chrono::milliseconds timeout) {
    const auto start = SteadyClock::now();
    while (SteadyClock::now() - start < timeout) {
      auto reply = client.commandBlocking({"SET", "after", "1"});
      if (reply && reply->isStatus()) return millisSince(start);
      std::this_thread::sleep_for(20ms);
    }
    return -1;
  }

  RedisServer primary_;
  std::unique_ptr<RedisServer> replica_;
  std::unique_ptr<RedisSentinelServer> sentinel_;
};

TEST_F(SentinelSetup, FollowsThePromotedReplicaWhenThePrimaryIsKilled) {
  IoThread io;
  auto client = makeClient(io, clientOptions());
  auto set = client->commandBlocking({"SET", "before", "kept"});
  ASSERT_TRUE(set && set->isStatus()) << describe(set);
  EXPECT_EQ(client->currentPrimary(), primaryAddress());
  // The replica has the write before the primary dies.
  auto acknowledged = client->commandBlocking({"WAIT", "1", "2000"});
  ASSERT_TRUE(acknowledged);
  ASSERT_EQ(acknowledged->integer, 1) << acknowledged->describe();

  primary_.kill();
  const auto took_ms = untilWritable(*client, 20s);
  ASSERT_GE(took_ms, 0) << "no writable primary within 20 s; sentinel log:\n" << sentinel_->log();
  EXPECT_EQ(client->currentPrimary(), replicaAddress());
  EXPECT_EQ(describe(client->commandBlocking({"GET", "before"})), "kept");
  EXPECT_GE(client->stats().discoveries, 2u);
  std::printf("[ measure  ] writable again %lld ms after the primary was killed\n", took_ms);
}

TEST_F(SentinelSetup, FollowsAManualFailoverWhileTheOldPrimaryLivesOn) {
  IoThread io;
  auto options = clientOptions();
  options.pool_size = 3;
  auto client = makeClient(io, options);
  // Every pooled connection is open to the primary before the switch.
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(client->commandBlocking({"SET", "before", "1"}));
  EXPECT_EQ(client->currentPrimary(), primaryAddress());

  // The client's subscription to +switch-master is in place (a client with sub=1).
  const auto subscribed_by = SteadyClock::now() + 5s;
  while (sentinel_->query({"CLIENT", "LIST"}).value_or("").find(" sub=1 ") == std::string::npos &&
         SteadyClock::now() < subscribed_by) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_NE(sentinel_->query({"CLIENT", "LIST"}).value_or("").find(" sub=1 "), std::string::npos);

  ASSERT_EQ(sentinel_->query({"SENTINEL", "FAILOVER", "mymaster"}), "OK");
  ASSERT_TRUE(sentinel_->waitForPrimary(replica_->port())) << sentinel_->log();
  // The old primary still runs as a primary (Sentinel demotes it only seconds later): the
  // client must leave it because Sentinel announced +switch-master, not because of an error.
  ASSERT_EQ(primary_.query({"ROLE"}).value_or("").rfind("[master", 0), 0u);

  const auto start = SteadyClock::now();
  while (client->currentPrimary() != replicaAddress() && SteadyClock::now() - start < 5s) {
    (void)client->commandBlocking({"GET", "before"});  // reconnects go to Sentinel's choice
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(client->currentPrimary(), replicaAddress());
  std::printf("[ measure  ] on the new primary %lld ms after Sentinel named it\n",
              millisSince(start));
  for (int i = 0; i < 10; ++i) {
    auto reply = client->commandBlocking({"INCR", "after_switch"});
    ASSERT_TRUE(reply) << reply.error().message;
    EXPECT_FALSE(reply->isError()) << reply->describe();
  }
  EXPECT_EQ(client->currentPrimary(), replicaAddress());
  EXPECT_EQ(replica_->query({"GET", "after_switch"}), "10");
}

TEST_F(SentinelSetup, UnknownMasterNameFailsWithTheReason) {
  IoThread io;
  auto options = clientOptions();
  options.master_name = "nosuchmaster";
  auto client = makeClient(io, options);
  auto reply = client->commandBlocking({"PING"});
  ASSERT_FALSE(reply);
  EXPECT_NE(reply.error().message.find("does not know master 'nosuchmaster'"), std::string::npos)
      << reply.error().message;
}

TEST(RedisReplica, WritesToAReplicaAreRefusedAsReplyValues) {
  RedisServer primary;
  RedisServer replica(RedisServerOptions::replicaOf(primary.port()));
  IoThread io;
  auto client = makeClient(io, optionsFor(replica.port()));
  auto reply = client->commandBlocking({"SET", "k", "v"});
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_TRUE(reply->isErrorCode("READONLY")) << reply->describe();
}

}  // namespace
}  // namespace saslguard::store::testing
