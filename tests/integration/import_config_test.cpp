// import_config_test.cpp — black box: the built binary converts UVSQ policyd's sample
// configuration, and what it writes passes `saslguard check-config` unchanged.
#include <gtest/gtest.h>

#include <fstream>

#include "support/daemon_process.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::testing {
namespace {

TEST(ImportConfig, UvsqPolicydOutputPassesCheckConfig) {
  TempDir dir;
  const auto out = (dir / "saslguard.toml").string();
  const auto converted =
      runSaslguard({"import-config", "--from", "uvsq-policyd",
                    std::string(SASLGUARD_TEST_DIR) + "/cli/cases/uvsq_policyd.cfg", "-o", out});
  ASSERT_EQ(converted.exit_code, 0) << converted.output;
  EXPECT_NE(converted.output.find("unknown key 'listen_backlog'"), std::string::npos)
      << converted.output;
  EXPECT_EQ(converted.output.find("S3cret"), std::string::npos);

  const auto checked = runSaslguard({"check-config", "--config", out});
  ASSERT_EQ(checked.exit_code, 0) << checked.output;
  EXPECT_NE(checked.output.find("\"24h:1500\""), std::string::npos) << checked.output;
  EXPECT_NE(checked.output.find("127.0.0.1:9093"), std::string::npos);
}

// Postfix's END-OF-MESSAGE request (smtpd_end_of_data_restrictions) with `recipients`.
std::string endOfMessage(const std::string& login, int recipients) {
  auto request = postfixRequest(login, "192.0.2.10", "END-OF-MESSAGE");
  const std::string zero = "recipient_count=0\n";
  request.replace(request.find(zero), zero.size(),
                  "recipient_count=" + std::to_string(recipients) + "\n");
  return request;
}

// The migration end to end: policyd.cfg -> import-config -> serve -> Postfix's requests.
TEST(ImportConfig, TheImportedConfigurationIsServedWithPolicydsSemantics) {
  TempDir dir;
  const auto cfg = (dir / "policyd.cfg").string();
  const auto out = (dir / "saslguard.toml").string();
  std::ofstream(cfg) << "port=9093\nbind=127.0.0.1\ndefaultquota=5\nblacklist=phisher";
  const auto converted = runSaslguard({"import-config", "--from", "uvsq-policyd", cfg, "-o", out});
  ASSERT_EQ(converted.exit_code, 0) << converted.output;

  DaemonProcess daemon(
      {"--config", out, "--listen", "127.0.0.1:0", "--state-dir", (dir / "state").string()},
      dir / "daemon.log");
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto client = PolicyClient::connectTcp(daemon.port());
  ASSERT_TRUE(client.has_value());
  // Accounts are logins without their domain, as in policyd: the two count together.
  EXPECT_EQ(client->ask(endOfMessage("Alice@uvsq.fr", 3)), "action=DUNNO");
  EXPECT_EQ(client->ask(endOfMessage("alice@other.example", 2)),
            "action=HOLD Quota exceeded, message held for review");
  EXPECT_EQ(client->ask(endOfMessage("alice@uvsq.fr", 5)),
            "action=REJECT 5.7.1 Recipient quota exceeded; contact your support");
  EXPECT_EQ(client->ask(endOfMessage("phisher@uvsq.fr", 1)),
            "action=HOLD Blacklisted, message held for review");
  // RCPT requests do not count.
  EXPECT_EQ(client->ask(postfixRequest("bob@uvsq.fr")), "action=DUNNO");
}

TEST(ImportConfig, AnUnreadableFileFailsWithAMessage) {
  const auto result = runSaslguard({"import-config", "--from", "uvsq-policyd", "/nonexistent.cfg"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("cannot read /nonexistent.cfg"), std::string::npos);
}

}  // namespace
}  // namespace saslguard::testing
