// sqlite_test.cpp — the event log on SQLite (the default): URL parsing, rows and batches, the
// timestamp format, retention, report top (library and CLI), drops at the queue bound.
#include <gtest/gtest.h>

#include <thread>

#include "eventlog/eventlog_support.hpp"
#include "support/daemon_process.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::eventlog {
namespace {

using namespace std::chrono_literals;
using saslguard::testing::TempDir;
using testing::makeRow;
using testing::optionsFor;

TEST(EventlogUrl, SqliteDefaultsToTheStateDirectory) {
  auto url = parseUrl("", "/var/lib/saslguard");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->backend, Backend::kSqlite);
  EXPECT_EQ(url->sqlite_path, "/var/lib/saslguard/events.sqlite");
  EXPECT_EQ(url->redacted, "sqlite:///var/lib/saslguard/events.sqlite");
}

TEST(EventlogUrl, MysqlMapsToSociKeysAndHidesThePassword) {
  auto url = parseUrl("mysql://pd:p%40ss%20w'd@db.example.org:3307/policyd?ssl_mode=REQUIRED", "");
  ASSERT_TRUE(url) << url.error().message;
  EXPECT_EQ(url->backend, Backend::kMysql);
  EXPECT_EQ(url->redacted, "mysql://pd:***@db.example.org:3307/policyd?ssl_mode=REQUIRED");
  EXPECT_NE(url->connect.find("host='db.example.org' port='3307' user='pd' password='p@ss w\\'d' "
                              "db='policyd'"),
            std::string::npos)
      << url->connect;
  EXPECT_NE(url->connect.find("ssl_mode='REQUIRED'"), std::string::npos);
}

TEST(EventlogUrl, PostgresqlMapsToLibpqKeys) {
  auto url = parseUrl("postgresql://u:secret@[::1]:5433/events_db", "");
  ASSERT_TRUE(url) << url.error().message;
  EXPECT_EQ(url->backend, Backend::kPostgresql);
  EXPECT_EQ(url->redacted, "postgresql://u:***@[::1]:5433/events_db");
  EXPECT_NE(
      url->connect.find("host='::1' port='5433' user='u' password='secret' dbname='events_db'"),
      std::string::npos)
      << url->connect;
}

TEST(EventlogUrl, RejectsWhatItCannotUse) {
  EXPECT_FALSE(parseUrl("sqlite://relative.db", ""));
  EXPECT_FALSE(parseUrl("mysql://u:p@host:port/db", ""));
  EXPECT_FALSE(parseUrl("mysql://u:p@host", ""));
  EXPECT_FALSE(parseUrl("oracle://u:p@host/db", ""));
  auto bad = parseUrl("mysql://u:topsecret@host:x/db", "");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message.find("topsecret"), std::string::npos) << bad.error().message;
}

class SqliteEventlog : public ::testing::Test {
 protected:
  std::string url() const { return "sqlite://" + (dir_ / "events.sqlite").string(); }
  TempDir dir_;
};

TEST_F(SqliteEventlog, WritesRowsAndReportsTopSenders) {
  testing::checkWritesAndTop(url(), "events");
}

TEST_F(SqliteEventlog, StoresUtcTextWithMillisecondsAndEveryColumn) {
  auto options = optionsFor(url());
  options.retention_days = 0;  // the row is from 2023
  auto log = SqlEventLog::start(options);
  auto row = makeRow("Dave@example.org", 4, fromUnixMs(1700000000123), "d@example.org");
  row.window_total = 44;
  row.action = "HOLD";
  row.shadow = true;
  row.sender = std::string("bad\xff\x00utf8", 9);
  ASSERT_TRUE(log->offer(std::move(row)));
  ASSERT_TRUE(log->flush(5s));
  auto db = testing::connectTo(url());
  ASSERT_TRUE(db);
  EXPECT_EQ(*db->queryText("SELECT ts || '|' || sasl_username || '|' || sender || '|' || "
                           "recipient_count || '|' || window_total || '|' || action || '|' || "
                           "detector || '|' || shadow FROM events"),
            "2023-11-14 22:13:20.123|Dave@example.org|bad??utf8|4|44|HOLD|quota|1");
  // UVSQ-style filtering on the text column works in SQLite's own date functions.
  EXPECT_EQ(*db->queryText("SELECT count(*) FROM events WHERE ts > "
                           "strftime('%Y-%m-%d %H:%M:%f', '2023-11-14 22:13:20.122')"),
            "1");
}

TEST_F(SqliteEventlog, WritesInBatchesOfAtMostBatchRows) {
  auto options = optionsFor(url());
  options.batch_rows = 100;
  options.flush_interval = 5s;  // only full batches are written before flush()
  auto log = SqlEventLog::start(options);
  const auto now = Clock::now();
  for (int i = 0; i < 250; ++i) ASSERT_TRUE(log->offer(makeRow("a", 1, now)));
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (log->stats().written < 200 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(log->stats().written, 200u);  // two full batches; 50 wait for the interval
  EXPECT_EQ(log->stats().queued, 50u);
  ASSERT_TRUE(log->flush(10s));
  EXPECT_EQ(log->stats().written, 250u);
}

TEST_F(SqliteEventlog, DeletesRowsPastTheRetentionInBatches) {
  testing::checkRetention(url(), "events");
}

TEST_F(SqliteEventlog, DropsAndCountsRowsBeyondTheQueueBound) {
  // A database that cannot be opened: every row waits, the bound is exact.
  auto options = optionsFor("sqlite:///nonexistent-dir/events.sqlite");
  options.queue_rows = 100;
  auto log = SqlEventLog::start(options);
  const auto now = Clock::now();
  int accepted = 0;
  for (int i = 0; i < 250; ++i) accepted += log->offer(makeRow("a", 1, now)) ? 1 : 0;
  EXPECT_EQ(accepted, 100);
  EXPECT_EQ(log->stats().dropped, 150u);
  EXPECT_EQ(log->stats().queued, 100u);
  std::this_thread::sleep_for(100ms);
  EXPECT_GE(log->stats().write_errors, 1u);
  EXPECT_FALSE(log->stats().connected);
  log->stop(50ms);  // what could not be written is dropped and counted
  EXPECT_EQ(log->stats().dropped, 250u);
}

TEST_F(SqliteEventlog, ReportTopCommandPrintsTableAndJson) {
  testing::checkWritesAndTop(url(), "events");
  auto text = saslguard::testing::runSaslguard(
      {"report", "top", "--state-dir", dir_.path().string(), "--limit", "5"});
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("alice@example.org"), std::string::npos) << text.output;
  EXPECT_LT(text.output.find("alice@example.org"), text.output.find("bob@example.org"));
  EXPECT_EQ(text.output.find("carol@example.org"), std::string::npos);
  auto json = saslguard::testing::runSaslguard(
      {"report", "top", "--state-dir", dir_.path().string(), "--since", "7d", "--json"});
  EXPECT_EQ(json.exit_code, 0) << json.output;
  EXPECT_NE(json.output.find(R"({"account":"carol@example.org","recipients":500,"messages":1,)"),
            std::string::npos)
      << json.output;
  auto missing =
      saslguard::testing::runSaslguard({"report", "top", "--state-dir", "/nonexistent-state"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("no event log at"), std::string::npos) << missing.output;
}

}  // namespace
}  // namespace saslguard::eventlog
