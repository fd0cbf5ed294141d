// daemon_test.cpp — `saslguard serve` opens the event log after the state store (SQLite in the
// state directory by default, or the configured URL, password never logged) and stops it after
// the workers, logging its counts.
#include <signal.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

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
