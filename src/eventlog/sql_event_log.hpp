// sql_event_log.hpp — the EventSink the daemon uses: offer() puts the row in a bounded queue and
// returns at once; one writer thread drains it into SQL in transactions of up to batch_rows
// (or every flush_interval), reconnects with back-off when the database is away, and deletes rows
// past the retention at start and daily, a few thousand at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "config/settings.hpp"
#include "eventlog/database.hpp"
#include "eventlog/event.hpp"

namespace saslguard::eventlog {

struct EventLogOptions {
  DatabaseUrl url;
  std::string table = "events";
  std::size_t queue_rows = 100000;  // rows waiting or being written, at most
  std::size_t batch_rows = 1000;
  std::chrono::milliseconds flush_interval{200};
  int retention_days = 7;  // 0: never delete
  std::chrono::milliseconds cleanup_interval = std::chrono::hours(24);
  std::uint64_t cleanup_batch_rows = 5000;
  std::chrono::milliseconds reconnect_min{250};
  std::chrono::milliseconds reconnect_max{30000};
  std::function<TimePoint()> clock = [] { return Clock::now(); };  // retention cut-off
};

// The database from eventlog.url (empty: events.sqlite in state.dir) and the password read from
// eventlog.password_file. A password written into eventlog.url is refused: the configuration is
// printed by check-config and must not hold it.
Result<DatabaseUrl> urlFrom(const config::Settings& settings);
// The options from the [eventlog] section.
Result<EventLogOptions> optionsFrom(const config::Settings& settings);

class SqlEventLog final : public EventSink {
 public:
  struct Stats {
    std::uint64_t offered = 0;
    std::uint64_t written = 0;
    std::uint64_t dropped = 0;
    std::uint64_t write_errors = 0;
    std::uint64_t deleted = 0;
    std::size_t queued = 0;  // waiting or being written
    bool connected = false;
  };

  // Starts the writer thread; it connects in the background (a database that is down does not
  // stop the daemon from starting).
  static std::unique_ptr<SqlEventLog> start(EventLogOptions options);
  ~SqlEventLog() override;
  SqlEventLog(const SqlEventLog&) = delete;
  SqlEventLog& operator=(const SqlEventLog&) = delete;

  bool offer(EventRow&& row) noexcept override;

  // Waits until every row offered so far is written or dropped; false on timeout.
  bool flush(std::chrono::milliseconds timeout);
  // Runs the retention cleanup now (next writer round) instead of at the next daily time.
  void requestCleanup();
  // Writes what it can within `grace`, drops (and counts) the rest, stops the writer thread.
  void stop(std::chrono::milliseconds grace);

  Stats stats() const;
  const EventLogOptions& options() const { return options_; }

 private:
  explicit SqlEventLog(EventLogOptions options);
  void run();
  bool writeBatch(std::vector<EventRow>& batch);
  void cleanupStep(bool& cleanup_due, std::chrono::steady_clock::time_point& next_cleanup);
  void connectionLost(const std::string& why);
  void warnRateLimited(std::chrono::steady_clock::time_point& last, const std::string& message);
  void doneWith(std::size_t rows);

  EventLogOptions options_;
  std::unique_ptr<Database> db_;  // writer thread only

  mutable std::mutex mutex_;
  std::condition_variable wake_;     // the writer: rows, cleanup or stop
  std::condition_variable drained_;  // flush() waiters
  std::deque<EventRow> queue_;
  std::size_t in_flight_ = 0;  // taken by the writer, not yet written or dropped
  bool stopping_ = false;
  bool cleanup_requested_ = false;
  int flush_waiters_ = 0;
  std::chrono::steady_clock::time_point stop_deadline_{};

  std::atomic<std::uint64_t> offered_{0}, written_{0}, dropped_{0}, write_errors_{0}, deleted_{0};
  std::atomic<std::uint64_t> dropped_unreported_{0};
  std::atomic<bool> connected_{false};
  std::chrono::steady_clock::time_point next_connect_{};
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point last_error_log_{}, last_drop_log_{};
  std::thread writer_;
};

}  // namespace saslguard::eventlog
