// admin_frozen_redis_test.cpp — black box: with state.backend = "redis" and Redis SIGSTOPped,
// an unblock through the admin API, geoip-policyd's POST /remove and POST /query, and the
// control socket's clear, list and show fail after command_timeout_ms with a clear error, while
// the same event loop keeps answering /livez within milliseconds: the handlers await the store
// instead of blocking the loop.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/daemon_process.hpp"
#include "support/http_client.hpp"
#include "support/mmdb.hpp"
#include "support/redis.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::testing {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr int kCommandTimeoutMs = 1000;

long long msSince(SteadyClock::time_point started) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started)
      .count();
}

// What `call` answered, and how many milliseconds it took.
template <class Call>
auto timed(Call call) {
  const auto started = SteadyClock::now();
  auto answer = call();
  return std::pair{std::move(answer), msSince(started)};
}

// Polls /livez until stopped; the slowest answer and how many there were.
class LivezProbe {
 public:
  explicit LivezProbe(unsigned short port)
      : thread_([this, port] {
          while (!stop_) {
            const auto started = SteadyClock::now();
            const auto answer = httpGet(port, "/livez");
            const auto took = msSince(started);
            if (answer.status != 200) ++failures_;
            slowest_ms_ = std::max<long long>(slowest_ms_, took);
            ++answers_;
            std::this_thread::sleep_for(5ms);
          }
        }) {}
  ~LivezProbe() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  long long slowestMs() const { return slowest_ms_; }
  int answers() const { return answers_; }
  int failures() const { return failures_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<long long> slowest_ms_{0};
  std::atomic<int> answers_{0};
  std::atomic<int> failures_{0};
  std::thread thread_;
};

TEST(AdminApiFrozenRedis, AnUnblockFailsWith503AfterTheTimeoutWhileLivezKeepsAnswering) {
  RedisServer redis;
  TempDir dir;
  const auto config = (dir / "saslguard.toml").string();
  const auto database = dir / "country.mmdb";
  writeMmdb(database, defaultTestNetworks());
  std::ofstream(config) << "[admin]\nenabled = true\nlisten = \"127.0.0.1:0\"\n"
                        << "[detectors.geo]\nenabled = true\ndatabase = \"" << database.string()
                        << "\"\n"
                        << "[state]\nbackend = \"redis\"\n[redis]\nserver = \"127.0.0.1:"
                        << redis.port() << "\"\ncommand_timeout_ms = " << kCommandTimeoutMs
                        << "\nreconnect_min_ms = 20\nreconnect_max_ms = 200\n";
  const auto state_dir = (dir / "state").string();
  DaemonProcess daemon({"--config", config, "--listen", "127.0.0.1:0", "--state-dir", state_dir},
                       dir / "daemon.log");
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  const auto blocked =
      httpJson(daemon.adminPort(), "POST", "/api/v1/block/mallory@example.org", "{}");
  ASSERT_EQ(blocked.status, 200) << blocked.body;

  redis.pause();
  LivezProbe probe(daemon.adminPort());
  std::this_thread::sleep_for(50ms);

  const auto port = daemon.adminPort();
  const auto [unblock, unblock_ms] = timed([&] {
    return httpJson(port, "POST", "/api/v1/unblock/mallory@example.org",
                    R"({"reason":"false alarm"})");
  });
  EXPECT_EQ(unblock.status, 503) << unblock.body;
  EXPECT_NE(unblock.body.find("clearing the mark"), std::string::npos) << unblock.body;
  // Within the call's deadline: command_timeout_ms, or sooner when the connection the call
  // needs cannot even finish its handshake (connect_timeout_ms, 500).
  EXPECT_LT(unblock_ms, kCommandTimeoutMs + 500);

  // geoip-policyd's POST /remove and the control socket (saslguard accounts clear) likewise.
  const auto [removed, removed_ms] = timed([&] {
    return httpJson(port, "POST", "/remove", R"({"key":"sender","value":"mallory@example.org"})");
  });
  EXPECT_EQ(removed.status, 500) << removed.body;
  EXPECT_NE(removed.body.find("state store"), std::string::npos) << removed.body;
  const auto control = [&](std::vector<std::string> arguments) {
    arguments.insert(arguments.end(), {"--config", config, "--state-dir", state_dir});
    return timed([&] { return runSaslguard(arguments); });
  };
  const auto [cleared, cleared_ms] = control({"accounts", "clear", "mallory@example.org"});
  EXPECT_EQ(cleared.exit_code, 1) << cleared.output;

  // Reads too: geoip-policyd's POST /query (fails open as geoip-policyd did: result true, the
  // error said) and the control socket's accounts show / list.
  const auto [queried, queried_ms] = timed([&] {
    return httpJson(port, "POST", "/query",
                    R"({"key":"client","value":{"address":")" + std::string(kGbAddress) +
                        R"(","sender":"mallory@example.org"}})");
  });
  EXPECT_EQ(queried.status, 202) << queried.body;
  EXPECT_NE(queried.body.find(R"("error":{"message")"), std::string::npos) << queried.body;
  EXPECT_LT(queried_ms, 2 * kCommandTimeoutMs + 1000);
  const auto [shown, shown_ms] = control({"accounts", "show", "mallory@example.org"});
  EXPECT_EQ(shown.exit_code, 1) << shown.output;
  const auto [listed, listed_ms] = control({"accounts", "list"});
  EXPECT_EQ(listed.exit_code, 1) << listed.output;

  std::this_thread::sleep_for(50ms);
  probe.stop();
  std::cout << "[ frozen   ] unblock answered " << unblock.status << " after " << unblock_ms
            << " ms, POST /remove " << removed.status << " after " << removed_ms
            << " ms, accounts clear exit " << cleared.exit_code << " after " << cleared_ms
            << " ms, POST /query " << queried.status << " after " << queried_ms
            << " ms, accounts show exit " << shown.exit_code << " after " << shown_ms
            << " ms, accounts list exit " << listed.exit_code << " after " << listed_ms
            << " ms; /livez answered " << probe.answers() << " times meanwhile, slowest "
            << probe.slowestMs() << " ms (command_timeout_ms " << kCommandTimeoutMs << ")\n";
  EXPECT_EQ(probe.failures(), 0);
  EXPECT_GE(probe.answers(), 20);
  EXPECT_LT(probe.slowestMs(), 100) << "the admin loop was held while Redis was frozen";

  // Redis back: the same unblock goes through.
  redis.resume();
  HttpResponse again;
  const auto resumed = SteadyClock::now();
  while (SteadyClock::now() - resumed < 5s) {
    again = httpJson(daemon.adminPort(), "POST", "/api/v1/unblock/mallory@example.org", "{}");
    if (again.status == 200) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_NE(again.body.find(R"("mark_cleared":true)"), std::string::npos) << again.body;
  EXPECT_TRUE(daemon.running());
}

}  // namespace
}  // namespace saslguard::testing
