// mariadb_test.cpp — the event log on a real MariaDB (one throwaway server for the suite): the
// table, UVSQ policyd's exact top-20 query, adopting UVSQ's own table, report top, and the server
// being killed under load.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "eventlog/eventlog_support.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::eventlog {
namespace {

using namespace std::chrono_literals;
using saslguard::testing::MariadbServer;
using testing::makeRow;
using testing::optionsFor;

class MariadbEventlog : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!MariadbServer::available()) return;
    server_ = new MariadbServer();
    if (!server_->start()) {
      start_error_ = server_->error();
      delete server_;
      server_ = nullptr;
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (!MariadbServer::available()) GTEST_SKIP() << "mariadb-server is not installed";
    ASSERT_NE(server_, nullptr) << start_error_;
    if (!server_->running()) {
      ASSERT_TRUE(server_->start()) << server_->error();
    }
  }
  static MariadbServer* server_;
  static std::string start_error_;
};

MariadbServer* MariadbEventlog::server_ = nullptr;
std::string MariadbEventlog::start_error_;

TEST_F(MariadbEventlog, WritesRowsAndReportsTopSenders) {
  testing::checkWritesAndTop(server_->url(), "events_top");
  saslguard::testing::TempDir state;
  testing::checkReportCommand(*server_, "events_top", state.path());
}

TEST_F(MariadbEventlog, UvsqTopTwentyQueryWorksUnchanged) {
  server_->sql("DROP TABLE IF EXISTS events");
  auto log = SqlEventLog::start(optionsFor(server_->url(), "events"));
  const auto now = Clock::now();
  for (int i = 0; i < 3; ++i) log->offer(makeRow("alice@example.org", 20, now - 2h));
  log->offer(makeRow("bob@example.org", 7, now - 30min));
  log->offer(makeRow("carol@example.org", 900, now - 30h));  // outside the day
  ASSERT_TRUE(log->flush(10s));
  EXPECT_EQ(server_->sql("SELECT DATA_TYPE, DATETIME_PRECISION FROM information_schema.COLUMNS "
                         "WHERE TABLE_SCHEMA = 'policyd' AND TABLE_NAME = 'events' AND "
                         "COLUMN_NAME = 'ts'"),
            "datetime\t3\n");
  // contrib/policyd-top20.sh, byte for byte.
  EXPECT_EQ(server_->sql("SELECT sasl_username, SUM(recipient_count) AS total from events where "
                         "ts>SUBDATE(CURRENT_TIMESTAMP(3), INTERVAL 1 DAY) GROUP BY sasl_username "
                         "ORDER BY total DESC LIMIT 20;"),
            "alice@example.org\t60\nbob@example.org\t7\n");
  // UVSQ's cleanup statement sees the same times.
  server_->sql("DELETE from events where ts<SUBDATE(CURRENT_TIMESTAMP(3), INTERVAL 1 DAY)");
  EXPECT_EQ(server_->sql("SELECT COUNT(*) FROM events"), "4\n");
}

TEST_F(MariadbEventlog, AdoptsUvsqTableAndMergesRowsOfTheSameMillisecond) {
  server_->sql("DROP TABLE IF EXISTS uvsq_events");
  server_->sql(
      "CREATE TABLE uvsq_events (ts DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE "
      "CURRENT_TIMESTAMP, sasl_username char(8) NOT NULL DEFAULT '', sender char(80) NOT NULL "
      "DEFAULT '', client_address char(80) NOT NULL DEFAULT '', recipient_count int(6) DEFAULT "
      "NULL, PRIMARY KEY (ts,sasl_username,sender,client_address)) ENGINE=InnoDB CHARSET=latin1");
  server_->sql(
      "INSERT INTO uvsq_events VALUES (NOW(3), 'olduser', 'o@example.org', '192.0.2.1', 5)");
  auto log = SqlEventLog::start(optionsFor(server_->url(), "uvsq_events"));
  const auto at = fromUnixMs(toUnixMs(Clock::now()) - 60000);
  log->offer(makeRow("longaccount@example.org", 3, at, "s@example.org"));
  log->offer(makeRow("longaccount@example.org", 4, at, "s@example.org"));  // same key as above
  log->offer(makeRow("h\xc3\xa9l\xc3\xa8ne@example.org", 1, at));
  ASSERT_TRUE(log->flush(10s));
  EXPECT_EQ(log->stats().write_errors, 0u);
  EXPECT_EQ(log->stats().dropped, 0u);
  EXPECT_EQ(server_->sql("SELECT sasl_username, recipient_count, action, detector FROM uvsq_events "
                         "WHERE sasl_username LIKE 'long%'"),
            "longaccount@example.org\t7\tDUNNO\tquota\n");
  EXPECT_EQ(server_->sql("SELECT COUNT(*) FROM uvsq_events WHERE sasl_username = "
                         "'h\xc3\xa9l\xc3\xa8ne@example.org'"),
            "1\n");
  EXPECT_EQ(server_->sql("SELECT sasl_username, recipient_count FROM uvsq_events WHERE "
                         "sasl_username = 'olduser'"),
            "olduser\t5\n");
  // The merged row kept its time (UVSQ's ON UPDATE CURRENT_TIMESTAMP did not move it).
  EXPECT_EQ(server_->sql("SELECT COUNT(*) FROM uvsq_events WHERE ts = FROM_UNIXTIME(" +
                         std::to_string(toUnixMs(at) / 1000) + "." +
                         fmt::format("{:03}", toUnixMs(at) % 1000) + ")"),
            "2\n");
}

TEST_F(MariadbEventlog, DeletesRowsPastTheRetentionInBatches) {
  server_->sql("DROP TABLE IF EXISTS events_retention");
  testing::checkRetention(server_->url(), "events_retention");
}

TEST_F(MariadbEventlog, KeepsOfferingWhileTheServerIsKilledAndResumesAfterRestart) {
  server_->sql("DROP TABLE IF EXISTS events_kill");
  testing::checkKilledMidStream(*server_, "events_kill");
}

TEST_F(MariadbEventlog, DropsExactlyBeyondTheQueueBoundWhileTheServerIsDown) {
  server_->sql("DROP TABLE IF EXISTS events_bound");
  testing::checkDropsExactlyAtTheBound(*server_, "events_bound");
}

}  // namespace
}  // namespace saslguard::eventlog
