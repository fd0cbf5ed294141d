// postgresql_test.cpp — the event log on a real PostgreSQL 15 (one throwaway server for the
// suite): the table, report top, retention, and the server being killed under load.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "eventlog/eventlog_support.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::eventlog {
namespace {

using namespace std::chrono_literals;
using saslguard::testing::PostgresServer;
using testing::makeRow;
using testing::optionsFor;

class PostgresqlEventlog : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!PostgresServer::available()) return;
    server_ = new PostgresServer();
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
    if (!PostgresServer::available()) GTEST_SKIP() << "postgresql is not installed";
    ASSERT_NE(server_, nullptr) << start_error_;
    if (!server_->running()) {
      ASSERT_TRUE(server_->start()) << server_->error();
    }
  }
  static PostgresServer* server_;
  static std::string start_error_;
};

PostgresServer* PostgresqlEventlog::server_ = nullptr;
std::string PostgresqlEventlog::start_error_;

TEST_F(PostgresqlEventlog, WritesRowsAndReportsTopSenders) {
  testing::checkWritesAndTop(server_->url(), "events_top");
  saslguard::testing::TempDir state;
  testing::checkReportCommand(*server_, "events_top", state.path());
}

TEST_F(PostgresqlEventlog, TableHasMillisecondTimestampsAndTheTopQueryWorks) {
  server_->sql("DROP TABLE IF EXISTS events");
  auto options = optionsFor(server_->url(), "events");
  options.retention_days = 0;  // one row is from 2023
  auto log = SqlEventLog::start(options);
  const auto now = Clock::now();
  for (int i = 0; i < 3; ++i) log->offer(makeRow("alice@example.org", 20, now - 2h));
  log->offer(makeRow("bob@example.org", 7, now - 30min));
  log->offer(makeRow("carol@example.org", 900, now - 30h));
  auto odd = makeRow("x@example.org", 1, fromUnixMs(1700000000123));
  odd.sender = std::string("\xff\xfe", 2);  // not UTF-8: PostgreSQL would refuse the batch
  log->offer(std::move(odd));
  ASSERT_TRUE(log->flush(10s));
  EXPECT_EQ(log->stats().dropped, 0u);
  EXPECT_EQ(server_->sql("SELECT data_type, datetime_precision FROM information_schema.columns "
                         "WHERE table_name = 'events' AND column_name = 'ts'"),
            "timestamp with time zone\t3\n");
  EXPECT_EQ(server_->sql("SELECT sasl_username, SUM(recipient_count) AS total FROM events WHERE "
                         "ts > now() - interval '1 day' GROUP BY sasl_username ORDER BY total "
                         "DESC LIMIT 20"),
            "alice@example.org\t60\nbob@example.org\t7\n");
  EXPECT_EQ(server_->sql("SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'), "
                         "sender FROM events WHERE sasl_username = 'x@example.org'"),
            "2023-11-14 22:13:20.123\t??\n");
}

TEST_F(PostgresqlEventlog, DeletesRowsPastTheRetentionInBatches) {
  server_->sql("DROP TABLE IF EXISTS events_retention");
  testing::checkRetention(server_->url(), "events_retention");
}

TEST_F(PostgresqlEventlog, KeepsOfferingWhileTheServerIsKilledAndResumesAfterRestart) {
  server_->sql("DROP TABLE IF EXISTS events_kill");
  testing::checkKilledMidStream(*server_, "events_kill");
}

TEST_F(PostgresqlEventlog, DropsExactlyBeyondTheQueueBoundWhileTheServerIsDown) {
  server_->sql("DROP TABLE IF EXISTS events_bound");
  testing::checkDropsExactlyAtTheBound(*server_, "events_bound");
}

}  // namespace
}  // namespace saslguard::eventlog
