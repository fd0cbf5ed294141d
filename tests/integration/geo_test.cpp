// geo_test.cpp — black box: the geo detector in the built daemon with a generated MaxMind DB and
// a real slapd mapping aliases to accounts: the limits count per mapped account and mark it, an
// injection attempt maps to nothing, the database is swapped when the file is replaced (and a
// garbage file is ignored), and a stopped directory answers ldap.failure_action.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>

#include "support/daemon_process.hpp"
#include "support/mmdb.hpp"
#include "support/slapd.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::testing {
namespace {

using namespace std::chrono_literals;

const std::string kReject = "action=REJECT 5.7.1 Policy violation. Please contact your support";

std::string rcpt(const std::string& login, std::string_view client) {
  return postfixRequest(login, std::string(client), "RCPT");
}

struct GeoSetup {
  TempDir dir;
  std::string state = (dir / "state").string();
  std::string database = (dir / "GeoLite2-Country.mmdb").string();

  std::unique_ptr<DaemonProcess> start(
      const std::string& ldap_uri,
      const std::string& geo_options = "max_countries = 2\nblock_permanent = true\n") {
    const auto config = (dir / "saslguard.toml").string();
    std::ofstream(config) << "[ldap]\nenabled = true\nuris = [\"" << ldap_uri
                          << "\"]\nbase_dn = \"dc=example,dc=test\"\ntimeout_ms = 500\n"
                             "failure_action = \"DEFER\"\n\n[detectors.geo]\nenabled = true\n"
                             "database = \""
                          << database << "\"\ndatabase_check_interval_s = 1\n"
                          << geo_options;
    return std::make_unique<DaemonProcess>(
        std::vector<std::string>{"--config", config, "--listen", "127.0.0.1:0", "--state-dir",
                                 state},
        dir / "daemon.log");
  }
};

TEST(GeoDaemon, AliasesCountAsTheirAccountAndTheThirdCountryFires) {
  Slapd slapd;
  GeoSetup setup;
  writeMmdb(setup.database, defaultTestNetworks());
  auto daemon = setup.start(slapd.uri());
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  auto client = PolicyClient::connectTcp(daemon->port());
  ASSERT_TRUE(client);
  EXPECT_EQ(client->ask(rcpt("alice.alias@example.test", kGbAddress)), "action=DUNNO");
  EXPECT_EQ(client->ask(rcpt("Sales@Example.test", kSeAddress)), "action=DUNNO");
  EXPECT_EQ(client->ask(rcpt("alice@example.test", kCnAddress)), kReject);

  // One account, "alice", holds all three countries and the mark.
  const auto shown = runSaslguard({"accounts", "show", "alice", "--state-dir", setup.state});
  EXPECT_NE(shown.output.find("detector:   geo"), std::string::npos) << shown.output;
  EXPECT_NE(shown.output.find("3 foreign countries"), std::string::npos) << shown.output;
  // Marked: any alias of alice is refused now, from anywhere.
  EXPECT_EQ(client->ask(rcpt("sales@example.test", kGbAddress)),
            "action=REJECT 5.7.1 This account is blocked; contact your support");

  // An injection attempt matches nothing and is counted under its own name.
  EXPECT_EQ(client->ask(rcpt("*)(uid=*", kGbAddress)), "action=DUNNO");
  const auto injected = runSaslguard({"accounts", "show", "*)(uid=*", "--state-dir", setup.state});
  EXPECT_NE(injected.output.find("geo:countries"), std::string::npos) << injected.output;
}

TEST(GeoDaemon, ANewDatabaseFileIsSwappedInAndAGarbageFileIgnored) {
  Slapd slapd;
  GeoSetup setup;
  writeMmdb(setup.database, defaultTestNetworks());
  auto daemon = setup.start(slapd.uri(), "max_countries = 0\n");
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  auto client = PolicyClient::connectTcp(daemon->port());
  ASSERT_TRUE(client);
  // 8.8.8.8 is in no test network: no country, the IP counts (max_ips 10): DUNNO.
  EXPECT_EQ(client->ask(rcpt("bob@example.test", kUnknownAddress)), "action=DUNNO");

  writeGarbageAtomically(setup.database, "not a database");
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(client->ask(rcpt("bob@example.test", kUnknownAddress)), "action=DUNNO");
  EXPECT_TRUE(daemon->waitForLog("still using")) << daemon->log();

  auto networks = defaultTestNetworks();
  networks.emplace_back("8.8.8.0/24", "US");
  writeMmdbAtomically(setup.database, networks);
  std::this_thread::sleep_for(1500ms);
  // Now 8.8.8.8 is in the US, a foreign country over max_countries 0.
  EXPECT_EQ(client->ask(rcpt("bob@example.test", kUnknownAddress)), kReject);
  EXPECT_TRUE(daemon->waitForLog("reloaded, now using")) << daemon->log();
}

TEST(GeoDaemon, AStoppedDirectoryAnswersTheFailureActionAndRecovers) {
  Slapd slapd;
  GeoSetup setup;
  writeMmdb(setup.database, defaultTestNetworks());
  auto daemon = setup.start(slapd.uri());
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  auto client = PolicyClient::connectTcp(daemon->port());
  ASSERT_TRUE(client);
  EXPECT_EQ(client->ask(rcpt("bob@example.test", kGbAddress)), "action=DUNNO");
  slapd.stop();
  // Cached: still mapped while the directory is away.
  EXPECT_EQ(client->ask(rcpt("bob@example.test", kGbAddress)), "action=DUNNO");
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(client->ask(rcpt("carol@example.test", kGbAddress)),
            "action=DEFER 4.7.1 Service temporarily unavailable; try again later");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  slapd.start();
  EXPECT_EQ(client->ask(rcpt("carol@example.test", kGbAddress)), "action=DUNNO");
}

TEST(GeoDaemon, AReloadKeepsTheLdapCacheWhenLdapSettingsDidNotChange) {
  Slapd slapd;
  GeoSetup setup;
  writeMmdb(setup.database, defaultTestNetworks());
  auto daemon = setup.start(slapd.uri());
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  auto client = PolicyClient::connectTcp(daemon->port());
  ASSERT_TRUE(client);
  EXPECT_EQ(client->ask(rcpt("team@example.test", kGbAddress)), "action=DUNNO");
  slapd.stop();
  daemon->signal(SIGHUP);
  ASSERT_TRUE(daemon->waitForLog("configuration reloaded")) << daemon->log();
  // Mapped from the cache the old pipeline filled: no directory needed.
  EXPECT_EQ(client->ask(rcpt("team@example.test", kGbAddress)), "action=DUNNO");
  EXPECT_EQ(client->ask(rcpt("nobody-cached@example.test", kGbAddress)),
            "action=DEFER 4.7.1 Service temporarily unavailable; try again later");
}

}  // namespace
}  // namespace saslguard::testing
