// database.hpp — the SQL side of the event log, one dialect per backend (SQLite, MariaDB,
// PostgreSQL) through SOCI: parsing eventlog.url, connecting, creating or adopting the table
// (UVSQ policyd's `events` layout plus our columns), batched inserts, retention and the top report.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/result.hpp"
#include "eventlog/event.hpp"

namespace soci {
class session;
}

namespace saslguard::eventlog {

enum class Backend { kSqlite, kMysql, kPostgresql };

struct DatabaseUrl {
  Backend backend = Backend::kSqlite;
  std::string connect;      // SOCI connect string (holds the password: never log it)
  std::string redacted;     // the URL with the password replaced by ***, for logs
  std::string sqlite_path;  // the database file, for sqlite
  bool password_in_url = false;
};

// sqlite:///abs/path, mysql://user:pass@host:port/db (also mariadb://),
// postgresql://user:pass@host:port/db (also postgres://). User and password are
// percent-decoded; ?key=value&... are passed on as backend connect options.
// An empty url means sqlite in `state_dir`/events.sqlite. A non-empty `password` replaces the
// URL's.
Result<DatabaseUrl> parseUrl(const std::string& url, const std::string& state_dir,
                             const std::string& password = {});

std::string_view backendName(Backend backend);

// One open connection with the table in place. Every call may throw nothing: failures are values.
class Database {
 public:
  static Result<std::unique_ptr<Database>> connect(const DatabaseUrl& url, std::string table);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Creates the table and its indexes when missing; an existing UVSQ policyd table gets our
  // extra columns added (and, on MariaDB, its narrow char(8)/char(80) columns widened).
  // Returns a line saying what was done ("" when nothing was).
  Result<std::string> ensureSchema();

  // Writes all rows in one transaction.
  Result<void> insert(const std::vector<EventRow>& rows);

  // Deletes at most `limit` rows older than `cutoff`; returns how many were deleted.
  Result<std::uint64_t> deleteOlderThan(TimePoint cutoff, std::uint64_t limit);

  struct TopSender {
    std::string account;
    std::int64_t recipients = 0;
    std::int64_t messages = 0;
    std::int64_t first_ms = 0;
    std::int64_t last_ms = 0;
  };
  // Accounts by recipients counted since `since`, most first (UVSQ's top-20 report, extended).
  Result<std::vector<TopSender>> topSenders(TimePoint since, int limit);

  // Runs one statement (tests, schema checks).
  Result<void> execute(const std::string& sql);
  // The first column of the first row as text, "" when there is no row (tests).
  Result<std::string> queryText(const std::string& sql);

  Backend backend() const { return backend_; }
  soci::session& session() { return *session_; }

 private:
  Database(Backend backend, std::unique_ptr<soci::session> session, std::string table);
  // The backend's SQL for a timestamp parameter bound with timestampParameter().
  std::string timestampExpression(const std::string& placeholder) const;
  std::string timestampParameter(TimePoint at) const;
  std::string epochMsExpression(const std::string& column) const;
  bool hasColumn(const std::string& column);

  Backend backend_;
  std::unique_ptr<soci::session> session_;
  std::string table_;
};

}  // namespace saslguard::eventlog
