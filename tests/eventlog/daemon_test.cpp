// daemon_test.cpp — `saslguard serve` opens the event log after the state store (SQLite in the
// state directory by default, or the configured URL, password never logged) and stops it after
// the workers, logging its counts.
#include <signal.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "eventlog/database.hpp"
#include "support/daemon_process.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::eventlog {
namespace {

using saslguard::testing::DaemonProcess;
using saslguard::testing::TempDir;

TEST(EventlogDaemon, OpensSqliteInTheStateDirectoryAndStopsCleanly) {
  TempDir dir;
  const auto state = dir / "state";
  DaemonProcess daemon({"--listen", "127.0.0.1:0", "--state-dir", state.string()},
                       dir / "daemon.log");
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  EXPECT_NE(daemon.log().find("event log: sqlite://" + state.string() + "/events.sqlite"),
            std::string::npos)
      << daemon.log();
  ASSERT_TRUE(daemon.waitForLog("event log: writing to")) << daemon.log();
  EXPECT_TRUE(std::filesystem::exists(state / "events.sqlite"));
  daemon.signal(SIGHUP);  // a reload keeps the same event log
  ASSERT_TRUE(daemon.waitForLog("configuration reloaded")) << daemon.log();
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.log();
  EXPECT_NE(
      daemon.log().find("event log stopped: 0 row(s) written, 0 dropped, 0 database error(s)"),
      std::string::npos)
      << daemon.log();
}

std::string endOfMessage(const std::string& login, int recipients) {
  auto request = saslguard::testing::postfixRequest(login, "192.0.2.10", "END-OF-MESSAGE");
  const std::string zero = "recipient_count=0\n";
  request.replace(request.find(zero), zero.size(),
                  "recipient_count=" + std::to_string(recipients) + "\n");
  return request;
}

// End to end: the quota detector counts messages, each becomes a row with the final action, the
// rows are written by shutdown, and report top reads them back.
TEST(EventlogDaemon, QuotaCountedMessagesBecomeRowsAndReportTopShowsThem) {
  TempDir dir;
  const auto state = (dir / "state").string();
  DaemonProcess daemon(
      {"--listen", "127.0.0.1:0", "--state-dir", state, "--detectors-quota-windows", "24h:10"},
      dir / "daemon.log");
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto client = saslguard::testing::PolicyClient::connectTcp(daemon.port());
  ASSERT_TRUE(client);
  EXPECT_EQ(client->ask(endOfMessage("alice@example.org", 4)), "action=DUNNO");
  EXPECT_EQ(client->ask(endOfMessage("alice@example.org", 4)), "action=DUNNO");
  EXPECT_EQ(client->ask(endOfMessage("alice@example.org", 4))->rfind("action=HOLD", 0), 0u);
  EXPECT_EQ(client->ask(endOfMessage("bob@example.org", 2)), "action=DUNNO");
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.log();
  EXPECT_NE(daemon.log().find("event log stopped: 4 row(s) written, 0 dropped"), std::string::npos)
      << daemon.log();

  auto url = parseUrl("", state);
  ASSERT_TRUE(url);
  auto db = Database::connect(*url, "events");
  ASSERT_TRUE(db);
  EXPECT_EQ(*(*db)->queryText("SELECT group_concat(recipient_count || ':' || window_total || ':' "
                              "|| action || ':' || detector || ':' || shadow, ' ') FROM (SELECT * "
                              "FROM events WHERE sasl_username = 'alice@example.org' ORDER BY "
                              "rowid)"),
            "4:4:DUNNO:quota:0 4:8:DUNNO:quota:0 4:12:HOLD:quota:0");

  const auto report = saslguard::testing::runSaslguard({"report", "top", "--state-dir", state});
  EXPECT_EQ(report.exit_code, 0) << report.output;
  const auto alice = report.output.find("alice@example.org");
  ASSERT_NE(alice, std::string::npos) << report.output;
  EXPECT_NE(report.output.find(" 12 ", alice), std::string::npos) << report.output;
  EXPECT_LT(alice, report.output.find("bob@example.org"));
}

TEST(EventlogDaemon, RefusesAPasswordInTheUrlWithoutShowingIt) {
  TempDir dir;
  const auto run = saslguard::testing::runSaslguard(
      {"serve", "--listen", "127.0.0.1:0", "--state-dir", (dir / "state").string(),
       "--eventlog-url", "mysql://pd:hunter2@127.0.0.1:1/policyd"});
  EXPECT_EQ(run.exit_code, 78) << run.output;
  EXPECT_NE(run.output.find("mysql://pd:***@127.0.0.1:1/policyd: put the password in "
                            "eventlog.password_file"),
            std::string::npos)
      << run.output;
  EXPECT_EQ(run.output.find("hunter2"), std::string::npos) << run.output;
}

TEST(EventlogDaemon, AnUnreachableDatabaseDoesNotStopTheDaemonNorShowsThePassword) {
  TempDir dir;
  std::ofstream(dir / "password") << "hunter2\n";
  DaemonProcess daemon(
      {"--listen", "127.0.0.1:0", "--state-dir", (dir / "state").string(), "--eventlog-url",
       "mysql://pd@127.0.0.1:1/policyd", "--eventlog-password-file", (dir / "password").string()},
      dir / "daemon.log");
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  ASSERT_TRUE(daemon.waitForLog("cannot connect to mysql://pd@127.0.0.1:1/policyd"))
      << daemon.log();
  auto client = saslguard::testing::PolicyClient::connectTcp(daemon.port());
  ASSERT_TRUE(client);
  const auto reply = client->ask(saslguard::testing::postfixRequest("alice@example.org"));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->rfind("action=", 0), 0u) << *reply;
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.log();
  EXPECT_EQ(daemon.log().find("hunter2"), std::string::npos) << daemon.log();
}

TEST(EventlogDaemon, CanBeTurnedOff) {
  TempDir dir;
  DaemonProcess daemon({"--listen", "127.0.0.1:0", "--state-dir", (dir / "state").string(),
                        "--eventlog-enabled", "false"},
                       dir / "daemon.log");
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  EXPECT_NE(daemon.log().find("event log: off"), std::string::npos) << daemon.log();
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0);
  EXPECT_FALSE(std::filesystem::exists(dir / "state" / "events.sqlite"));
}

}  // namespace
}  // namespace saslguard::eventlog
