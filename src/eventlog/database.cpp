// database.cpp — see database.hpp. All SQL the event log runs is here, per backend. SOCI throws;
// every public function catches and returns an Error whose message never holds the password.
#include "eventlog/database.hpp"

#include <fmt/format.h>
#include <soci/mysql/soci-mysql.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <ctime>

namespace saslguard::eventlog {
namespace {

// Column widths of the table we create; longer values are cut (at a UTF-8 boundary).
constexpr std::size_t kAccountBytes = 255;
constexpr std::size_t kSenderBytes = 255;
constexpr std::size_t kClientBytes = 64;
constexpr std::size_t kActionBytes = 16;
constexpr std::size_t kDetectorBytes = 32;

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> percentDecode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return fail("bad %-escape");
    const int high = hexValue(text[i + 1]);
    const int low = hexValue(text[i + 2]);
    if (high < 0 || low < 0) return fail("bad %-escape");
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

// A value in a SOCI/libpq connect string: quoted, with ' and \ escaped.
std::string quoteValue(std::string_view value) {
  std::string out = "'";
  for (const char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

// Valid UTF-8 without NUL (PostgreSQL refuses anything else), at most `limit` bytes.
std::string clean(std::string_view text, std::size_t limit) {
  std::string out;
  out.reserve(std::min(text.size(), limit));
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t length = c < 0x80         ? 1
                         : (c >> 5) == 6  ? 2
                         : (c >> 4) == 14 ? 3
                         : (c >> 3) == 30 ? 4
                                          : 0;
    bool valid = length > 0 && i + length <= text.size() && c != 0;
    for (std::size_t k = 1; valid && k < length; ++k) {
      valid = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    }
    if (!valid) length = 1;
    if (out.size() + (valid ? length : 1) > limit) break;
    if (valid) {
      out.append(text.substr(i, length));
    } else {
      out += '?';
    }
    i += length;
  }
  return out;
}

std::string utcText(std::int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  const auto millis = static_cast<int>(ms - static_cast<std::int64_t>(seconds) * 1000);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
}

// user[:password]@host[:port]/database[?key=value&...]
struct Authority {
  std::string user, password, host, port, database;
  std::vector<std::pair<std::string, std::string>> parameters;
};

Result<Authority> parseAuthority(std::string_view rest) {
  Authority out;
  std::string_view query;
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash + 1 == rest.size()) {
    return fail("the URL names no database (…/DATABASE)");
  }
  auto database = percentDecode(rest.substr(slash + 1));
  if (!database) return tl::unexpected(database.error());
  out.database = *database;
  auto authority = rest.substr(0, slash);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const auto credentials = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const auto colon = credentials.find(':');
    auto user = percentDecode(credentials.substr(0, colon));
    if (!user) return tl::unexpected(user.error());
    out.user = *user;
    if (colon != std::string_view::npos) {
      auto password = percentDecode(credentials.substr(colon + 1));
      if (!password) return tl::unexpected(password.error());
      out.password = *password;
    }
  }
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return fail("unclosed [ in the host");
    out.host = authority.substr(1, close - 1);
    authority = authority.substr(close + 1);
    if (authority.starts_with(':')) out.port = authority.substr(1);
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    out.host = authority.substr(0, colon);
    out.port = authority.substr(colon + 1);
  } else {
    out.host = authority;
  }
  if (!out.port.empty() && out.port.find_first_not_of("0123456789") != std::string::npos) {
    return fail("the port is not a number");
  }
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) return fail("bad ?key=value parameter");
    auto value = percentDecode(item.substr(eq + 1));
    if (!value) return tl::unexpected(value.error());
    const auto key = std::string(item.substr(0, eq));
    if (key.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != std::string::npos) {
      return fail("bad parameter name " + key);
    }
    out.parameters.emplace_back(key, *value);
  }
  return out;
}

std::string redact(const std::string& url) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const auto at = url.find('@', scheme + 3);
  const auto slash = url.find('/', scheme + 3);
  if (at == std::string::npos || (slash != std::string::npos && slash < at)) return url;
  const auto colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

}  // namespace

std::string_view backendName(Backend backend) {
  switch (backend) {
    case Backend::kSqlite:
      return "sqlite";
    case Backend::kMysql:
      return "mysql";
    case Backend::kPostgresql:
      return "postgresql";
  }
  return "?";
}

Result<DatabaseUrl> parseUrl(const std::string& url, const std::string& state_dir,
                             const std::string& password) {
  DatabaseUrl out;
  if (url.empty()) return parseUrl("sqlite://" + state_dir + "/events.sqlite", state_dir);
  out.redacted = redact(url);
  const auto error = [&](const std::string& reason) {
    return fail("eventlog.url " + out.redacted + ": " + reason);
  };
  if (url.starts_with("sqlite://")) {
    const auto path = url.substr(9);
    if (!path.starts_with('/')) return error("expected sqlite:///absolute/path");
    if (path.find_first_of(" '\\\t\n") != std::string::npos) {
      return error("the path must not contain spaces, quotes or backslashes");
    }
    out.backend = Backend::kSqlite;
    out.connect = "db=" + path + " timeout=5";
    out.sqlite_path = path;
    return out;
  }
  std::string_view rest;
  for (const std::string_view scheme : {"mysql://", "mariadb://"}) {
    if (url.starts_with(scheme)) {
      out.backend = Backend::kMysql;
      rest = std::string_view(url).substr(scheme.size());
    }
  }
  for (const std::string_view scheme : {"postgresql://", "postgres://"}) {
    if (url.starts_with(scheme)) {
      out.backend = Backend::kPostgresql;
      rest = std::string_view(url).substr(scheme.size());
    }
  }
  if (rest.empty()) return error("expected sqlite://, mysql:// or postgresql://");
  auto authority = parseAuthority(rest);
  if (!authority) return error(authority.error().message);
  out.password_in_url = !authority->password.empty();
  if (!password.empty()) authority->password = password;
  std::vector<std::pair<std::string, std::string>> items;
  const bool mysql = out.backend == Backend::kMysql;
  if (!authority->host.empty()) items.emplace_back("host", authority->host);
  if (!authority->port.empty()) items.emplace_back("port", authority->port);
  if (!authority->user.empty()) items.emplace_back("user", authority->user);
  if (!authority->password.empty()) items.emplace_back("password", authority->password);
  items.emplace_back(mysql ? "db" : "dbname", authority->database);
  if (mysql) {
    items.emplace_back("charset", "utf8mb4");
    items.emplace_back("connect_timeout", "3");
    items.emplace_back("read_timeout", "30");
    items.emplace_back("write_timeout", "30");
  } else {
    items.emplace_back("connect_timeout", "3");
    items.emplace_back("options", "-c client_min_messages=warning");
  }
  for (auto& [key, value] : authority->parameters) {
    bool replaced = false;
    for (auto& item : items) {
      if (item.first == key) {
        item.second = value;
        replaced = true;
      }
    }
    if (!replaced) items.emplace_back(key, value);
  }
  for (const auto& [key, value] : items) {
    if (!out.connect.empty()) out.connect += ' ';
    out.connect += key + "=" + quoteValue(value);
  }
  return out;
}

Database::Database(Backend backend, std::unique_ptr<soci::session> session, std::string table)
    : backend_(backend), session_(std::move(session)), table_(std::move(table)) {}

Database::~Database() = default;

Result<std::unique_ptr<Database>> Database::connect(const DatabaseUrl& url, std::string table) {
  try {
    auto session = std::make_unique<soci::session>();
    switch (url.backend) {
      case Backend::kSqlite:
        session->open(soci::sqlite3, url.connect);
        *session << "PRAGMA journal_mode=WAL";
        *session << "PRAGMA synchronous=NORMAL";
        break;
      case Backend::kMysql:
        session->open(soci::mysql, url.connect);
        break;
      case Backend::kPostgresql:
        session->open(soci::postgresql, url.connect);
        break;
    }
    return std::unique_ptr<Database>(
        new Database(url.backend, std::move(session), std::move(table)));
  } catch (const std::exception& e) {
    return fail(fmt::format("cannot connect to {}: {}", url.redacted, e.what()));
  }
}

std::string Database::timestampExpression(const std::string& placeholder) const {
  switch (backend_) {
    case Backend::kSqlite:
      return placeholder;
    case Backend::kMysql:  // in the session time zone, as CURRENT_TIMESTAMP(3) in UVSQ's query
      return "FROM_UNIXTIME(CAST(" + placeholder + " AS DECIMAL(17,3)))";
    case Backend::kPostgresql:
      return "to_timestamp(CAST(" + placeholder + " AS double precision))";
  }
  return placeholder;
}

std::string Database::timestampParameter(TimePoint at) const {
  const auto ms = toUnixMs(at);
  if (backend_ == Backend::kSqlite) return utcText(ms);
  const auto seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  return fmt::format("{}.{:03}", seconds, ms - seconds * 1000);
}

std::string Database::epochMsExpression(const std::string& column) const {
  switch (backend_) {
    case Backend::kSqlite:
      return "CAST(ROUND((julianday(" + column + ") - 2440587.5) * 86400000.0) AS INTEGER)";
    case Backend::kMysql:
      return "CAST(UNIX_TIMESTAMP(" + column + ") * 1000 AS SIGNED)";
    case Backend::kPostgresql:
      return "CAST(EXTRACT(EPOCH FROM " + column + ") * 1000 AS bigint)";
  }
  return column;
}

bool Database::hasColumn(const std::string& column) {
  try {
    *session_ << "SELECT " + column + " FROM " + table_ + " WHERE 1 = 0";
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

Result<std::string> Database::ensureSchema() {
  const auto& t = table_;
  std::string create;
  switch (backend_) {
    case Backend::kSqlite:
      create = "CREATE TABLE IF NOT EXISTS " + t +
               " (ts TEXT NOT NULL, sasl_username TEXT NOT NULL DEFAULT '',"
               " sender TEXT NOT NULL DEFAULT '', client_address TEXT NOT NULL DEFAULT '',"
               " recipient_count INTEGER DEFAULT NULL, window_total INTEGER DEFAULT NULL,"
               " action TEXT DEFAULT NULL, detector TEXT DEFAULT NULL,"
               " shadow INTEGER NOT NULL DEFAULT 0)";
      break;
    case Backend::kMysql:
      create = "CREATE TABLE IF NOT EXISTS " + t +
               " (ts DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
               " sasl_username VARCHAR(255) NOT NULL DEFAULT '',"
               " sender VARCHAR(255) NOT NULL DEFAULT '',"
               " client_address VARCHAR(64) NOT NULL DEFAULT '',"
               " recipient_count INT DEFAULT NULL, window_total BIGINT DEFAULT NULL,"
               " action VARCHAR(16) DEFAULT NULL, detector VARCHAR(32) DEFAULT NULL,"
               " shadow TINYINT NOT NULL DEFAULT 0) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";
      break;
    case Backend::kPostgresql:
      create = "CREATE TABLE IF NOT EXISTS " + t +
               " (ts timestamptz(3) NOT NULL DEFAULT now(),"
               " sasl_username varchar(255) NOT NULL DEFAULT '',"
               " sender varchar(255) NOT NULL DEFAULT '',"
               " client_address varchar(64) NOT NULL DEFAULT '',"
               " recipient_count integer DEFAULT NULL, window_total bigint DEFAULT NULL,"
               " action varchar(16) DEFAULT NULL, detector varchar(32) DEFAULT NULL,"
               " shadow smallint NOT NULL DEFAULT 0)";
      break;
  }
  std::string done;
  try {
    *session_ << create;
    if (!hasColumn("window_total")) {
      // An existing table in UVSQ policyd's layout: keep its rows and primary key, add our
      // columns; on MariaDB also widen char(8) sasl_username etc. (UVSQ cut long accounts).
      if (backend_ == Backend::kMysql) {
        *session_ << "ALTER TABLE " + t +
                         " ADD COLUMN window_total BIGINT DEFAULT NULL,"
                         " ADD COLUMN action VARCHAR(16) DEFAULT NULL,"
                         " ADD COLUMN detector VARCHAR(32) DEFAULT NULL,"
                         " ADD COLUMN shadow TINYINT NOT NULL DEFAULT 0,"
                         " MODIFY sasl_username VARCHAR(255) CHARACTER SET utf8mb4 NOT NULL "
                         "DEFAULT '',"
                         " MODIFY sender VARCHAR(255) CHARACTER SET utf8mb4 NOT NULL DEFAULT '',"
                         " MODIFY client_address VARCHAR(64) CHARACTER SET utf8mb4 NOT NULL "
                         "DEFAULT ''";
      } else {
        const auto integer = backend_ == Backend::kSqlite ? "INTEGER" : "bigint";
        const auto text = backend_ == Backend::kSqlite ? "TEXT" : "varchar(32)";
        *session_ << fmt::format("ALTER TABLE {} ADD COLUMN window_total {} DEFAULT NULL", t,
                                 integer);
        *session_ << fmt::format("ALTER TABLE {} ADD COLUMN action {} DEFAULT NULL", t, text);
        *session_ << fmt::format("ALTER TABLE {} ADD COLUMN detector {} DEFAULT NULL", t, text);
        *session_ << fmt::format("ALTER TABLE {} ADD COLUMN shadow {} NOT NULL DEFAULT 0", t,
                                 backend_ == Backend::kSqlite ? "INTEGER" : "smallint");
      }
      done =
          "added the columns window_total, action, detector and shadow to the existing table " + t;
    }
    // Per-account lookups on a database server; not on the default SQLite file, where this
    // index dirties a random page per row and makes the writer cost about four times as much
    // (docs/performance.md). `report top` needs only the ts index.
    if (backend_ != Backend::kSqlite) {
      *session_ << fmt::format(
          "CREATE INDEX IF NOT EXISTS {0}_account_ts ON {0} (sasl_username, ts)", t);
    }
    *session_ << fmt::format("CREATE INDEX IF NOT EXISTS {0}_ts ON {0} (ts)", t);
  } catch (const std::exception& e) {
    return fail(fmt::format("creating the table {}: {}", t, e.what()));
  }
  return done;
}

Result<void> Database::insert(const std::vector<EventRow>& rows) {
  if (rows.empty()) return {};
  std::vector<std::string> ts, account, sender, client, action, detector;
  std::vector<long long> recipients, window;
  std::vector<int> shadow;
  for (const auto& row : rows) {
    ts.push_back(timestampParameter(row.ts));
    account.push_back(clean(row.sasl_username, kAccountBytes));
    sender.push_back(clean(row.sender, kSenderBytes));
    client.push_back(clean(row.client_address, kClientBytes));
    recipients.push_back(
        static_cast<long long>(std::min<std::uint64_t>(row.recipient_count, INT32_MAX)));
    window.push_back(static_cast<long long>(std::min<std::uint64_t>(row.window_total, INT64_MAX)));
    action.push_back(clean(row.action, kActionBytes));
    detector.push_back(clean(row.detector, kDetectorBytes));
    shadow.push_back(row.shadow ? 1 : 0);
  }
  auto sql = "INSERT INTO " + table_ +
             " (ts, sasl_username, sender, client_address, recipient_count, window_total, action,"
             " detector, shadow) VALUES (" +
             timestampExpression(":ts") +
             ", :account, :sender, :client, :recipients, :window, :action, :detector, :shadow)";
  if (backend_ == Backend::kMysql) {
    // UVSQ's primary key (ts, sasl_username, sender, client_address) collides for two messages
    // in one millisecond: merge them instead of failing (its total stays right). ts = VALUES(ts)
    // keeps UVSQ's ON UPDATE CURRENT_TIMESTAMP from moving the row.
    sql +=
        " ON DUPLICATE KEY UPDATE ts = VALUES(ts),"
        " recipient_count = recipient_count + VALUES(recipient_count),"
        " window_total = VALUES(window_total), action = VALUES(action),"
        " detector = VALUES(detector), shadow = VALUES(shadow)";
  }
  try {
    soci::transaction transaction(*session_);
    *session_ << sql, soci::use(ts, "ts"), soci::use(account, "account"),
        soci::use(sender, "sender"), soci::use(client, "client"),
        soci::use(recipients, "recipients"), soci::use(window, "window"),
        soci::use(action, "action"), soci::use(detector, "detector"), soci::use(shadow, "shadow");
    transaction.commit();
  } catch (const std::exception& e) {
    return fail(fmt::format("writing {} row(s) to {}: {}", rows.size(), table_, e.what()));
  }
  return {};
}

Result<std::uint64_t> Database::deleteOlderThan(TimePoint cutoff, std::uint64_t limit) {
  const auto before = timestampExpression(":cutoff");
  std::string sql;
  switch (backend_) {
    case Backend::kSqlite:
      sql = fmt::format(
          "DELETE FROM {0} WHERE rowid IN (SELECT rowid FROM {0} WHERE ts < {1} LIMIT {2})", table_,
          before, limit);
      break;
    case Backend::kMysql:
      sql = fmt::format("DELETE FROM {} WHERE ts < {} LIMIT {}", table_, before, limit);
      break;
    case Backend::kPostgresql:
      sql = fmt::format(
          "DELETE FROM {0} WHERE ctid IN (SELECT ctid FROM {0} WHERE ts < {1} LIMIT {2})", table_,
          before, limit);
      break;
  }
  try {
    const auto parameter = timestampParameter(cutoff);
    soci::statement statement = (session_->prepare << sql, soci::use(parameter, "cutoff"));
    statement.execute(true);
    return static_cast<std::uint64_t>(statement.get_affected_rows());
  } catch (const std::exception& e) {
    return fail(fmt::format("deleting old rows from {}: {}", table_, e.what()));
  }
}

Result<std::vector<Database::TopSender>> Database::topSenders(TimePoint since, int limit) {
  const auto integer = backend_ == Backend::kMysql ? "SIGNED" : "BIGINT";
  const auto sql = fmt::format(
      "SELECT sasl_username, CAST(COALESCE(SUM(recipient_count), 0) AS {0}) AS total,"
      " CAST(COUNT(*) AS {0}) AS messages, {1}, {2} FROM {3} WHERE ts > {4}"
      " GROUP BY sasl_username ORDER BY total DESC, sasl_username LIMIT {5}",
      integer, epochMsExpression("MIN(ts)"), epochMsExpression("MAX(ts)"), table_,
      timestampExpression(":since"), limit);
  std::vector<TopSender> out;
  try {
    const auto parameter = timestampParameter(since);
    TopSender row;
    long long recipients = 0, messages = 0, first = 0, last = 0;
    soci::statement statement =
        (session_->prepare << sql, soci::use(parameter, "since"), soci::into(row.account),
         soci::into(recipients), soci::into(messages), soci::into(first), soci::into(last));
    statement.execute();
    while (statement.fetch()) {
      row.recipients = recipients;
      row.messages = messages;
      row.first_ms = first;
      row.last_ms = last;
      out.push_back(row);
    }
  } catch (const std::exception& e) {
    return fail(fmt::format("reading {}: {}", table_, e.what()));
  }
  return out;
}

Result<void> Database::execute(const std::string& sql) {
  try {
    *session_ << sql;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return {};
}

Result<std::string> Database::queryText(const std::string& sql) {
  try {
    std::string value;
    soci::indicator indicator = soci::i_ok;
    *session_ << sql, soci::into(value, indicator);
    if (!session_->got_data() || indicator != soci::i_ok) return std::string();
    return value;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

}  // namespace saslguard::eventlog
