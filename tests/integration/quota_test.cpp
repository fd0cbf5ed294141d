// quota_test.cpp — black box: the quota detector in the built daemon, and its overrides file
// read again on SIGHUP (a broken file is rejected with its name and line, the old quotas stay).
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>

#include "support/daemon_process.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::testing {
namespace {

const std::string kHold = "action=HOLD Quota exceeded, message held for review";

std::string endOfMessage(const std::string& login, int recipients) {
  auto request = postfixRequest(login, "192.0.2.10", "END-OF-MESSAGE");
  const std::string zero = "recipient_count=0\n";
  request.replace(request.find(zero), zero.size(),
                  "recipient_count=" + std::to_string(recipients) + "\n");
  return request;
}

TEST(QuotaDaemon, SighupReadsTheOverridesFileAgain) {
  TempDir dir;
  const auto overrides = (dir / "quotas").string();
  const auto config = (dir / "saslguard.toml").string();
  std::ofstream(overrides) << "bulk@example.org 100\n";
  std::ofstream(config) << "[detectors.quota]\nwindows = [\"24h:10\"]\noverrides_file = \""
                        << overrides << "\"\n";
  DaemonProcess daemon(
      {"--config", config, "--listen", "127.0.0.1:0", "--state-dir", (dir / "state").string()},
      dir / "daemon.log");
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto client = PolicyClient::connectTcp(daemon.port());
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(client->ask(endOfMessage("bulk@example.org", 50)), "action=DUNNO");
  EXPECT_EQ(client->ask(endOfMessage("alice@example.org", 10)), kHold);

  std::ofstream(overrides) << "# lowered\nbulk@example.org 60\n";
  daemon.signal(SIGHUP);
  ASSERT_TRUE(daemon.waitForLog("configuration reloaded")) << daemon.log();
  EXPECT_EQ(client->ask(endOfMessage("bulk@example.org", 10)), kHold);  // 60 >= 60

  std::ofstream(overrides) << "bulk@example.org 60\nbroken line here\n";
  daemon.signal(SIGHUP);
  ASSERT_TRUE(daemon.waitForLog("reload rejected")) << daemon.log();
  EXPECT_NE(daemon.log().find(overrides + ":2:"), std::string::npos) << daemon.log();
  EXPECT_EQ(client->ask(endOfMessage("bulk@example.org", 1)), kHold);  // still quota 60
}

}  // namespace
}  // namespace saslguard::testing
