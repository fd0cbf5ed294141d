// redis_fleet_test.cpp — black box: two built daemons sharing one real Redis (state.backend =
// "redis"): counts and marks seen by both at once, exact counts under parallel load, redis-cli
// SREM unblocking both, a Sentinel failover under load, and a SIGSTOPped Redis.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <thread>

#include "support/child_process.hpp"
#include "support/daemon_process.hpp"
#include "support/http_client.hpp"
#include "support/redis.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::testing {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

const std::string kBlocked = "action=REJECT 5.7.1 This account is blocked; contact your support";
const std::string kHold = "action=HOLD Quota exceeded, message held for review";
const std::string kDefer = "action=DEFER";  // the start of state.failure_action's reply

std::string endOfMessage(const std::string& login, int recipients) {
  auto request = postfixRequest(login, "192.0.2.10", "END-OF-MESSAGE");
  const std::string zero = "recipient_count=0\n";
  request.replace(request.find(zero), zero.size(),
                  "recipient_count=" + std::to_string(recipients) + "\n");
  return request;
}

// A metric's value from /metrics ("saslguard_store_errors_total 3"); -1 when absent.
double metric(unsigned short admin_port, const std::string& name) {
  const auto body = httpGet(admin_port, "/metrics").body;
  const auto at = body.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(body.substr(at + name.size() + 2));
}

// Runs the real redis-cli; its output.
std::string redisCli(unsigned short port, const std::vector<std::string>& args) {
  std::string command = "/usr/bin/redis-cli -p " + std::to_string(port);
  for (const auto& arg : args) command += " '" + arg + "'";
  std::string output;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char buffer[256];
    while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
    ::pclose(pipe);
  }
  return output;
}

// Two daemons on one Redis (or on Sentinel), each with the admin API; `extra` ends the file.
struct Fleet {
  TempDir dir;
  std::unique_ptr<DaemonProcess> a, b;

  void start(const std::string& redis_section, const std::string& extra = "") {
    for (const char* name : {"a", "b"}) {
      const auto config = dir / (std::string(name) + ".toml");
      std::ofstream(config) << "[admin]\nenabled = true\nlisten = \"127.0.0.1:0\"\n"
                            << "[state]\nbackend = \"redis\"\nfailure_action = \"DEFER\"\n"
                            << "[redis]\n"
                            << redis_section << "\n[detectors.quota]\nwindows = [\"24h:10\"]\n"
                            << extra;
      auto daemon = std::make_unique<DaemonProcess>(
          std::vector<std::string>{"--config", config.string(), "--listen", "127.0.0.1:0",
                                   "--state-dir", (dir / name).string()},
          dir / (std::string(name) + ".log"));
      (std::string(name) == "a" ? a : b) = std::move(daemon);
    }
  }
  std::string logs() const { return "--- a:\n" + a->log() + "\n--- b:\n" + b->log(); }
};

std::string serverSection(unsigned short port, int command_timeout_ms = 250) {
  return "server = \"127.0.0.1:" + std::to_string(port) +
         "\"\ncommand_timeout_ms = " + std::to_string(command_timeout_ms) +
         "\nreconnect_min_ms = 20\nreconnect_max_ms = 200\n";
}

TEST(RedisFleet, CountsAndMarksAreSharedAtOnceAndRedisCliSremUnblocksBoth) {
  RedisServer redis;
  Fleet fleet;
  fleet.start(serverSection(redis.port()));
  ASSERT_TRUE(fleet.a->ready() && fleet.b->ready()) << fleet.logs();
  auto a = PolicyClient::connectTcp(fleet.a->port());
  auto b = PolicyClient::connectTcp(fleet.b->port());
  ASSERT_TRUE(a && b);

  // Quota 10 over both: 6 on one, then 4 on the other reaches it.
  EXPECT_EQ(a->ask(endOfMessage("alice@example.org", 6)), "action=DUNNO");
  EXPECT_EQ(b->ask(endOfMessage("alice@example.org", 3)), "action=DUNNO");
  EXPECT_EQ(b->ask(endOfMessage("alice@example.org", 1)), kHold) << fleet.logs();

  // Blocked through one instance's API: the other refuses the next request.
  const auto blocked = httpJson(fleet.a->adminPort(), "POST", "/api/v1/block/bob@example.org",
                                R"({"reason":"phished"})");
  ASSERT_EQ(blocked.status, 200) << blocked.body;
  EXPECT_EQ(b->ask(endOfMessage("bob@example.org", 1)), kBlocked);
  EXPECT_EQ(a->ask(endOfMessage("bob@example.org", 1)), kBlocked);
  EXPECT_EQ(redisCli(redis.port(), {"SMEMBERS", "compromised_accts"}), "bob@example.org\n");

  // The Abusix way out, with the real redis-cli: both instances let bob send again.
  EXPECT_EQ(redisCli(redis.port(), {"SREM", "compromised_accts", "bob@example.org"}), "1\n");
  EXPECT_EQ(b->ask(endOfMessage("bob@example.org", 1)), "action=DUNNO");
  EXPECT_EQ(a->ask(endOfMessage("bob@example.org", 1)), "action=DUNNO");
  // And SADD blocks, on both.
  EXPECT_EQ(redisCli(redis.port(), {"SADD", "compromised_accts", "carol@example.org"}), "1\n");
  EXPECT_EQ(a->ask(endOfMessage("carol@example.org", 1)), kBlocked);
  EXPECT_EQ(b->ask(endOfMessage("carol@example.org", 1)), kBlocked);
}

TEST(RedisFleet, ParallelRequestsSplitOverBothCountExactly) {
  RedisServer redis;
  Fleet fleet;
  constexpr int kClients = 8, kEach = 50, kTotal = kClients * kEach;
  fleet.start(serverSection(redis.port(), 2000),
              "accounts = [\"busy@example.org:" + std::to_string(kTotal) + "\"]\n");
  ASSERT_TRUE(fleet.a->ready() && fleet.b->ready()) << fleet.logs();

  // One message of one recipient per request: exactly one of them brings the total to the
  // quota (HOLD), every other one sees less. A lost or doubled count changes that.
  std::atomic<int> dunno{0}, hold{0}, other{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      auto client = PolicyClient::connectTcp(c % 2 == 0 ? fleet.a->port() : fleet.b->port());
      if (!client) {
        other += kEach;
        return;
      }
      for (int i = 0; i < kEach; ++i) {
        const auto reply = client->ask(endOfMessage("busy@example.org", 1));
        if (reply == "action=DUNNO") {
          ++dunno;
        } else if (reply == kHold) {
          ++hold;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& client : clients) client.join();
  EXPECT_EQ(dunno, kTotal - 1) << fleet.logs();
  EXPECT_EQ(hold, 1);
  EXPECT_EQ(other, 0);
  auto a = PolicyClient::connectTcp(fleet.a->port());
  ASSERT_TRUE(a);
  EXPECT_EQ(a->ask(endOfMessage("busy@example.org", 1)), kHold);  // total + 1: still held
}

// Requests in a loop on one daemon, each reply with when it came.
struct Load {
  struct Reply {
    SteadyClock::time_point at;
    std::chrono::microseconds took;
    std::string text;
  };
  std::vector<Reply> replies;
  std::atomic<bool> stop{false};
  std::thread thread;

  Load(unsigned short port, std::string account) {
    thread = std::thread([this, port, account] {
      auto client = PolicyClient::connectTcp(port);
      while (client && !stop) {
        const auto started = SteadyClock::now();
        auto reply = client->ask(endOfMessage(account, 0));
        const auto now = SteadyClock::now();
        replies.push_back({now,
                           std::chrono::duration_cast<std::chrono::microseconds>(now - started),
                           reply.value_or("(no reply)")});
        if (!reply) {
          client.reset();
          if (auto again = PolicyClient::connectTcp(port)) client.emplace(std::move(*again));
        }
        std::this_thread::sleep_for(2ms);
      }
    });
  }
  ~Load() { finish(); }
  void finish() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
  // After `since`: how many replies were not DUNNO, and when the last of them came.
  std::pair<int, SteadyClock::time_point> failuresSince(SteadyClock::time_point since) const {
    int failures = 0;
    SteadyClock::time_point last = since;
    for (const auto& reply : replies) {
      if (reply.at < since || reply.text == "action=DUNNO") continue;
      ++failures;
      last = reply.at;
    }
    return {failures, last};
  }
};

TEST(RedisFleet, FollowsSentinelToTheNewPrimaryUnderLoad) {
  RedisServer primary;
  RedisServer replica(RedisServerOptions::replicaOf(primary.port()));
  ASSERT_TRUE(primary.waitForReplicaAcks(1)) << replica.log();
  RedisSentinelServer sentinel(primary.port());
  ASSERT_TRUE(sentinel.waitForReplicas(1)) << sentinel.log();

  Fleet fleet;
  fleet.start("sentinels = [\"127.0.0.1:" + std::to_string(sentinel.port()) +
              "\"]\ncommand_timeout_ms = 250\nreconnect_min_ms = 20\nreconnect_max_ms = 200\n");
  ASSERT_TRUE(fleet.a->ready() && fleet.b->ready()) << fleet.logs();
  {
    auto a = PolicyClient::connectTcp(fleet.a->port());
    ASSERT_TRUE(a);
    ASSERT_EQ(a->ask(endOfMessage("warmup@example.org", 1)), "action=DUNNO") << fleet.logs();
  }

  Load on_a(fleet.a->port(), "load-a@example.org");
  Load on_b(fleet.b->port(), "load-b@example.org");
  std::this_thread::sleep_for(300ms);
  const auto killed = SteadyClock::now();
  primary.kill();
  ASSERT_TRUE(sentinel.waitForPrimary(replica.port())) << sentinel.log();
  const auto promoted = SteadyClock::now();
  std::this_thread::sleep_for(1500ms);  // saslguard follows within this
  on_a.finish();
  on_b.finish();

  const std::pair<const Load*, const DaemonProcess*> daemons[] = {{&on_a, fleet.a.get()},
                                                                  {&on_b, fleet.b.get()}};
  for (const auto& [load, daemon] : daemons) {
    const auto [failures, last_failure] = load->failuresSince(killed);
    const auto back_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(last_failure - killed).count();
    const auto after_promotion_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(last_failure - promoted).count();
    std::cout << "[ failover ] " << failures << " of " << load->replies.size()
              << " replies failed; the last " << back_ms << " ms after the kill, "
              << after_promotion_ms << " ms after Sentinel named the replica\n";
    EXPECT_GT(failures, 0) << "the outage went unnoticed";
    EXPECT_LT(after_promotion_ms, 1000) << "still failing long after the promotion";
    ASSERT_GT(load->replies.size(), 0u);
    EXPECT_EQ(load->replies.back().text, "action=DUNNO") << fleet.logs();
    for (const auto& reply : load->replies) {
      ASSERT_TRUE(reply.text == "action=DUNNO" || reply.text.starts_with(kDefer))
          << reply.text << "\n"
          << fleet.logs();
      ASSERT_LT(reply.took, 2s) << "a reply took " << reply.took.count() << " us";
    }
    // Every failed reply was counted (and was logged, thinned to 20 lines a second).
    EXPECT_GE(metric(daemon->adminPort(), "saslguard_store_errors_total"), failures);
  }
  EXPECT_TRUE(fleet.a->running() && fleet.b->running());
  EXPECT_EQ(redisCli(replica.port(), {"ROLE"}).substr(0, 7), "master\n");
}

TEST(RedisFleet, FrozenRedisGetsTheFailureActionInTimeAndCachedMarksStillRefuse) {
  RedisServer redis;
  Fleet fleet;
  constexpr int kTimeoutMs = 200;
  fleet.start(serverSection(redis.port(), kTimeoutMs));
  ASSERT_TRUE(fleet.a->ready() && fleet.b->ready()) << fleet.logs();
  auto a = PolicyClient::connectTcp(fleet.a->port());
  auto b = PolicyClient::connectTcp(fleet.b->port());
  ASSERT_TRUE(a && b);
  ASSERT_EQ(b->ask(endOfMessage("fine@example.org", 1)), "action=DUNNO") << fleet.logs();

  // Blocked through a: b has never seen a request for mallory, it heard of the mark on the
  // registry channel.
  const auto blocked = httpJson(fleet.a->adminPort(), "POST", "/api/v1/block/mallory@example.org",
                                R"({"reason":"phished"})");
  ASSERT_EQ(blocked.status, 200) << blocked.body;
  std::this_thread::sleep_for(200ms);  // the channel message, well within this

  redis.pause();
  std::chrono::milliseconds slowest{0};
  const auto timed = [&](PolicyClient& client, const std::string& account) {
    const auto started = SteadyClock::now();
    auto reply = client.ask(endOfMessage(account, 1));
    slowest = std::max(slowest, std::chrono::duration_cast<std::chrono::milliseconds>(
                                    SteadyClock::now() - started));
    return reply.value_or("(no reply)");
  };
  for (int round = 0; round < 5; ++round) {
    EXPECT_TRUE(timed(*b, "fine@example.org").starts_with(kDefer)) << fleet.logs();
    EXPECT_EQ(timed(*b, "mallory@example.org"), kBlocked) << fleet.logs();
    EXPECT_EQ(timed(*a, "mallory@example.org"), kBlocked) << fleet.logs();
  }
  std::cout << "[ frozen   ] slowest reply " << slowest.count() << " ms (command timeout "
            << kTimeoutMs << " ms)\n";
  EXPECT_LT(slowest.count(), kTimeoutMs + 300);
  EXPECT_GE(metric(fleet.b->adminPort(), "saslguard_registry_cache_answers_total"), 5);

  redis.resume();
  const auto resumed = SteadyClock::now();
  std::string reply;
  while (SteadyClock::now() - resumed < 5s) {
    reply = timed(*b, "fine@example.org");
    if (reply == "action=DUNNO") break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(reply, "action=DUNNO") << fleet.logs();
  std::cout
      << "[ frozen   ] answered from Redis again "
      << std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - resumed).count()
      << " ms after SIGCONT\n";
  EXPECT_EQ(timed(*a, "mallory@example.org"), kBlocked);
  EXPECT_TRUE(fleet.a->running() && fleet.b->running());
}

TEST(RedisFleet, StartsWhileRedisIsDownAndAnswersTheFailureAction) {
  const auto port = freeLoopbackPort();
  Fleet fleet;
  fleet.start(serverSection(port));
  ASSERT_TRUE(fleet.a->ready()) << fleet.logs();
  auto a = PolicyClient::connectTcp(fleet.a->port());
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->ask(endOfMessage("alice@example.org", 1)).value_or("").starts_with(kDefer));
  EXPECT_TRUE(fleet.a->waitForLog("state store failed for account=")) << fleet.logs();
  EXPECT_GE(metric(fleet.a->adminPort(), "saslguard_store_errors_total"), 1);
}

}  // namespace
}  // namespace saslguard::testing
