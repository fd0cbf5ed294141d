// sql_event_log.cpp — see sql_event_log.hpp. The queue lock is held only to push or take rows,
// never during database I/O, so a slow or dead database never slows offer().
#include "eventlog/sql_event_log.hpp"

#include <spdlog/spdlog.h>

#include <fstream>

#include "metrics/metrics.hpp"

namespace saslguard::eventlog {

using SteadyClock = std::chrono::steady_clock;

Result<DatabaseUrl> urlFrom(const config::Settings& settings) {
  const auto& s = settings.eventlog;
  std::string password;
  if (!s.password_file.empty()) {
    std::ifstream in(s.password_file);
    if (!in) return fail("eventlog.password_file: cannot read " + s.password_file);
    std::getline(in, password);
    if (!password.empty() && password.back() == '\r') password.pop_back();
  }
  auto url = parseUrl(s.url, settings.state.dir, password);
  if (!url) return tl::unexpected(url.error());
  if (url->password_in_url) {
    return fail("eventlog.url " + url->redacted +
                ": put the password in eventlog.password_file, not in the URL");
  }
  return url;
}

Result<EventLogOptions> optionsFrom(const config::Settings& settings) {
  const auto& s = settings.eventlog;
  auto url = urlFrom(settings);
  if (!url) return tl::unexpected(url.error());
  EventLogOptions options;
  options.url = std::move(*url);
  options.table = s.table;
  options.queue_rows = static_cast<std::size_t>(s.queue_rows);
  options.batch_rows = static_cast<std::size_t>(s.batch_rows);
  options.flush_interval = std::chrono::milliseconds(s.flush_interval_ms);
  options.retention_days = s.retention_days;
  return options;
}

std::unique_ptr<SqlEventLog> SqlEventLog::start(EventLogOptions options) {
  std::unique_ptr<SqlEventLog> log(new SqlEventLog(std::move(options)));
  log->writer_ = std::thread([raw = log.get()] { raw->run(); });
  return log;
}

SqlEventLog::SqlEventLog(EventLogOptions options) : options_(std::move(options)) {
  if (options_.batch_rows == 0) options_.batch_rows = 1;
  if (options_.queue_rows == 0) options_.queue_rows = 1;
  backoff_ = options_.reconnect_min;
}

SqlEventLog::~SqlEventLog() {
  stop(std::chrono::milliseconds(0));
}

bool SqlEventLog::offer(EventRow&& row) noexcept {
  offered_.fetch_add(1, std::memory_order_relaxed);
  bool wake = false;
  try {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() + in_flight_ >= options_.queue_rows) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      dropped_unreported_.fetch_add(1, std::memory_order_relaxed);
      SASLGUARD_COUNT(eventlog_rows_dropped_total);
      return false;
    }
    queue_.push_back(std::move(row));
    wake = queue_.size() == options_.batch_rows;
  } catch (...) {  // out of memory: the row is dropped, the request goes on
    dropped_.fetch_add(1, std::memory_order_relaxed);
    dropped_unreported_.fetch_add(1, std::memory_order_relaxed);
    SASLGUARD_COUNT(eventlog_rows_dropped_total);
    return false;
  }
  if (wake) wake_.notify_one();
  return true;
}

bool SqlEventLog::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  ++flush_waiters_;  // the writer writes partial batches at once while someone waits
  wake_.notify_one();
  const bool drained =
      drained_.wait_for(lock, timeout, [this] { return queue_.empty() && in_flight_ == 0; });
  --flush_waiters_;
  return drained;
}

void SqlEventLog::requestCleanup() {
  {
    std::lock_guard lock(mutex_);
    cleanup_requested_ = true;
  }
  wake_.notify_one();
}

void SqlEventLog::stop(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      stopping_ = true;
      stop_deadline_ = SteadyClock::now() + grace;
    }
  }
  wake_.notify_one();
  if (writer_.joinable()) writer_.join();
}

SqlEventLog::Stats SqlEventLog::stats() const {
  Stats out;
  out.offered = offered_.load();
  out.written = written_.load();
  out.dropped = dropped_.load();
  out.write_errors = write_errors_.load();
  out.deleted = deleted_.load();
  out.connected = connected_.load();
  std::lock_guard lock(mutex_);
  out.queued = queue_.size() + in_flight_;
  return out;
}

void SqlEventLog::warnRateLimited(SteadyClock::time_point& last, const std::string& message) {
  const auto now = SteadyClock::now();
  if (last != SteadyClock::time_point{} && now - last < std::chrono::seconds(10)) return;
  last = now;
  spdlog::warn("event log: {}", message);
}

void SqlEventLog::doneWith(std::size_t rows) {
  {
    std::lock_guard lock(mutex_);
    in_flight_ -= std::min(in_flight_, rows);
  }
  drained_.notify_all();
}

void SqlEventLog::connectionLost(const std::string& why) {
  write_errors_.fetch_add(1, std::memory_order_relaxed);
  SASLGUARD_COUNT(eventlog_write_errors_total);
  warnRateLimited(last_error_log_,
                  why + fmt::format(" (retrying in {} ms; rows are queued)", backoff_.count()));
  db_.reset();
  connected_ = false;
  next_connect_ = SteadyClock::now() + backoff_;
  backoff_ = std::min(backoff_ * 2, options_.reconnect_max);
}

// Writes the batch; true when it is done with it (written, or dropped because the database
// refuses these rows while it answers other statements — a poison batch must not stall the log).
bool SqlEventLog::writeBatch(std::vector<EventRow>& batch) {
  auto written = db_->insert(batch);
  if (written) {
    written_.fetch_add(batch.size(), std::memory_order_relaxed);
    metrics::increment(metrics::local().eventlog_rows_written_total, batch.size());
    return true;
  }
  if (db_->execute("SELECT 1")) {
    write_errors_.fetch_add(1, std::memory_order_relaxed);
    SASLGUARD_COUNT(eventlog_write_errors_total);
    dropped_.fetch_add(batch.size(), std::memory_order_relaxed);
    metrics::increment(metrics::local().eventlog_rows_dropped_total, batch.size());
    warnRateLimited(last_error_log_, written.error().message + "; the batch is dropped");
    return true;
  }
  connectionLost(written.error().message);
  return false;
}

void SqlEventLog::cleanupStep(bool& cleanup_due, SteadyClock::time_point& next_cleanup) {
  const auto cutoff = options_.clock() - std::chrono::hours(24) * options_.retention_days;
  auto deleted = db_->deleteOlderThan(cutoff, options_.cleanup_batch_rows);
  if (!deleted) {
    write_errors_.fetch_add(1, std::memory_order_relaxed);
    SASLGUARD_COUNT(eventlog_write_errors_total);
    warnRateLimited(last_error_log_, deleted.error().message + "; retrying in an hour");
    cleanup_due = false;
    next_cleanup = SteadyClock::now() + std::min<std::chrono::milliseconds>(
                                            options_.cleanup_interval, std::chrono::hours(1));
    return;
  }
  deleted_.fetch_add(*deleted, std::memory_order_relaxed);
  if (*deleted < options_.cleanup_batch_rows) {
    cleanup_due = false;
    next_cleanup = SteadyClock::now() + options_.cleanup_interval;
    spdlog::info(
        "event log: retention cleanup done ({} row(s) older than {} day(s) deleted so far)",
        deleted_.load(), options_.retention_days);
  }
}

void SqlEventLog::run() {
  std::vector<EventRow> batch;
  bool cleanup_due = options_.retention_days > 0;  // at start, then daily
  auto next_cleanup = SteadyClock::time_point::max();
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (batch.empty()) {
        wake_.wait_for(lock, options_.flush_interval, [&] {
          return stopping_ || cleanup_requested_ || queue_.size() >= options_.batch_rows ||
                 (flush_waiters_ > 0 && !queue_.empty()) || (cleanup_due && db_);
        });
        const auto take = std::min(queue_.size(), options_.batch_rows);
        for (std::size_t i = 0; i < take; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        in_flight_ = batch.size();
      }
      if (cleanup_requested_ && options_.retention_days > 0) cleanup_due = true;
      cleanup_requested_ = false;
      if (stopping_) {
        if (batch.empty() && queue_.empty()) break;
        if (SteadyClock::now() >= stop_deadline_) {
          const auto lost = batch.size() + queue_.size();
          dropped_.fetch_add(lost, std::memory_order_relaxed);
          metrics::increment(metrics::local().eventlog_rows_dropped_total, lost);
          spdlog::warn("event log: {} row(s) not written before shutdown", lost);
          queue_.clear();
          batch.clear();
          in_flight_ = 0;
          break;
        }
      }
    }
    if (const auto unreported = dropped_unreported_.exchange(0); unreported > 0) {
      warnRateLimited(last_drop_log_, fmt::format("queue full ({} rows): {} row(s) dropped",
                                                  options_.queue_rows, unreported));
    }
    if (!db_) {
      const auto now = SteadyClock::now();
      if (now < next_connect_) {
        std::unique_lock lock(mutex_);
        auto until = next_connect_;
        if (stopping_) until = std::min(until, stop_deadline_);
        wake_.wait_until(lock, until);
        continue;
      }
      auto db = Database::connect(options_.url, options_.table);
      if (db) {
        auto schema = (*db)->ensureSchema();
        if (!schema) {
          connectionLost(schema.error().message);
          continue;
        }
        if (!schema->empty()) spdlog::info("event log: {}", *schema);
        db_ = std::move(*db);
        connected_ = true;
        backoff_ = options_.reconnect_min;
        spdlog::info("event log: writing to {} table {}", options_.url.redacted, options_.table);
      } else {
        connectionLost(db.error().message);
        continue;
      }
    }
    if (!batch.empty()) {
      if (!writeBatch(batch)) continue;  // kept for the next connection
      const auto rows = batch.size();
      batch.clear();
      doneWith(rows);
    } else {
      drained_.notify_all();
    }
    if (!cleanup_due && options_.retention_days > 0 && SteadyClock::now() >= next_cleanup) {
      cleanup_due = true;
    }
    if (cleanup_due && db_) cleanupStep(cleanup_due, next_cleanup);
  }
  db_.reset();
  connected_ = false;
  drained_.notify_all();
}

}  // namespace saslguard::eventlog
