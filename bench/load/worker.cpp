// worker.cpp — the policy client connection as Postfix's smtpd drives it: one request, wait for
// "action=...\n\n", the next. Open loop: a request that finds the connection still busy at its
// scheduled time queues, and its latency runs from the schedule (no coordinated omission).
// Errors are counted; the connection reconnects.
#include "load/worker.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cctype>

#include <sys/prctl.h>

namespace saslguard::bench {

namespace asio = boost::asio;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
constexpr auto kReconnectBackoff = std::chrono::milliseconds(100);

void LoadStats::merge(const LoadStats& other) {
  latency.merge(other.latency);
  send_lag.merge(other.send_lag);
  dunno += other.dunno;
  hold += other.hold;
  reject += other.reject;
  defer += other.defer;
  this->other += other.other;
  err_connect += other.err_connect;
  err_closed += other.err_closed;
  err_timeout += other.err_timeout;
  err_malformed += other.err_malformed;
  unsent += other.unsent;
  last_completion = std::max(last_completion, other.last_completion);
}

namespace {

uint64_t nanoseconds(Clock::duration duration) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(duration).count());
}

enum class Outcome { kDunno, kHold, kReject, kDefer, kOther, kClosed, kTimeout, kMalformed };

bool startsWithWord(std::string_view text, std::string_view word) {
  if (text.size() < word.size()) return false;
  for (size_t i = 0; i < word.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(text[i])) != word[i]) return false;
  return text.size() == word.size() || text[word.size()] == ' ' || text[word.size()] == '\t';
}

// A reply is attribute lines up to an empty line; Postfix needs an "action=" among them. Numeric
// codes count with the verb they stand for (4xx defer, 5xx reject).
Outcome classifyReply(std::string_view reply) {
  while (!reply.empty()) {
    auto newline = reply.find('\n');
    auto line = reply.substr(0, newline);
    reply.remove_prefix(newline == std::string_view::npos ? reply.size() : newline + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.starts_with("action=")) continue;
    auto action = line.substr(7);
    if (startsWithWord(action, "DUNNO")) return Outcome::kDunno;
    if (startsWithWord(action, "HOLD")) return Outcome::kHold;
    if (startsWithWord(action, "REJECT")) return Outcome::kReject;
    if (startsWithWord(action, "DEFER")) return Outcome::kDefer;
    if (action.size() >= 3 && std::isdigit(static_cast<unsigned char>(action[1])) &&
        std::isdigit(static_cast<unsigned char>(action[2]))) {
      if (action[0] == '4') return Outcome::kDefer;
      if (action[0] == '5') return Outcome::kReject;
    }
    return Outcome::kOther;
  }
  return Outcome::kMalformed;
}

// End of the reply's empty line, or npos. Tolerates CRLF.
size_t replyEnd(std::string_view data) {
  for (size_t newline = data.find('\n'); newline != std::string_view::npos;
       newline = data.find('\n', newline + 1)) {
    if (newline + 1 < data.size() && data[newline + 1] == '\n') return newline + 2;
    if (newline + 2 < data.size() && data[newline + 1] == '\r' && data[newline + 2] == '\n')
      return newline + 3;
  }
  return std::string_view::npos;
}

}  // namespace

class Connection {
 public:
  Connection(asio::io_context& context, const RunPlan& plan, LoadStats& stats, uint32_t id)
      : plan_(plan),
        stats_(stats),
        id_(id),
        socket_(context),
        schedule_timer_(context),
        watchdog_timer_(context),
        stream_(*plan.population, plan.seed, id) {
    out_.reserve(4096);
  }

  void start(asio::io_context& context) {
    asio::co_spawn(context, run(), asio::detached);
    asio::co_spawn(context, watchdog(), asio::detached);
  }

 private:
  asio::awaitable<void> run();
  asio::awaitable<void> watchdog();
  asio::awaitable<bool> connect();
  asio::awaitable<Outcome> exchange();
  asio::awaitable<void> sleepUntil(Clock::time_point when);
  void count(Outcome outcome, Clock::duration latency, Clock::time_point done);
  void arm() {
    deadline_ = Clock::now() + plan_.timeout;
    armed_ = true;
    timed_out_ = false;
  }

  const RunPlan& plan_;
  LoadStats& stats_;
  uint32_t id_;
  asio::generic::stream_protocol::socket socket_;
  asio::steady_timer schedule_timer_;
  asio::steady_timer watchdog_timer_;
  TransactionStream stream_;
  std::string out_;
  std::array<char, 4096> in_;
  // The watchdog closes the socket once an armed operation passes its deadline.
  Clock::time_point deadline_{};
  bool armed_ = false;
  bool timed_out_ = false;
  bool running_ = true;
};

asio::awaitable<void> Connection::sleepUntil(Clock::time_point when) {
  schedule_timer_.expires_at(when);
  co_await schedule_timer_.async_wait(kAwait);
}

asio::awaitable<bool> Connection::connect() {
  boost::system::error_code ignored;
  socket_.close(ignored);
  arm();
  auto [error] = co_await socket_.async_connect(plan_.target.address, kAwait);
  armed_ = false;
  if (!error && plan_.target.is_tcp) socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  if (error) socket_.close(ignored);
  co_return !error;
}

asio::awaitable<Outcome> Connection::exchange() {
  arm();
  auto [write_error, written] = co_await asio::async_write(socket_, asio::buffer(out_), kAwait);
  if (write_error) {
    armed_ = false;
    co_return timed_out_ ? Outcome::kTimeout : Outcome::kClosed;
  }
  size_t size = 0;
  for (;;) {
    auto [read_error, got] = co_await socket_.async_read_some(
        asio::buffer(in_.data() + size, in_.size() - size), kAwait);
    if (read_error) {
      armed_ = false;
      co_return timed_out_ ? Outcome::kTimeout : Outcome::kClosed;
    }
    size += got;
    std::string_view data(in_.data(), size);
    auto end = replyEnd(data);
    if (end != std::string_view::npos) {
      armed_ = false;
      // Bytes past the reply were never asked for: the stream is out of step.
      co_return end == size ? classifyReply(data.substr(0, end)) : Outcome::kMalformed;
    }
    if (size == in_.size()) {
      armed_ = false;
      co_return Outcome::kMalformed;
    }
  }
}

// Counts what finished inside the measured window — by completion time, so a backlog scheduled
// during the warmup still counts once answered — and, with --requests, only up to the limit.
void Connection::count(Outcome outcome, Clock::duration latency, Clock::time_point done) {
  if (done < plan_.measure_start || done > plan_.end) return;
  if (plan_.request_limit != 0 &&
      plan_.requests_counted->fetch_add(1, std::memory_order_relaxed) >= plan_.request_limit)
    return;
  stats_.last_completion = std::max(stats_.last_completion, done);
  switch (outcome) {
    case Outcome::kDunno:
      ++stats_.dunno;
      break;
    case Outcome::kHold:
      ++stats_.hold;
      break;
    case Outcome::kReject:
      ++stats_.reject;
      break;
    case Outcome::kDefer:
      ++stats_.defer;
      break;
    case Outcome::kOther:
      ++stats_.other;
      break;
    case Outcome::kClosed:
      ++stats_.err_closed;
      return;
    case Outcome::kTimeout:
      ++stats_.err_timeout;
      return;
    case Outcome::kMalformed:
      ++stats_.err_malformed;
      return;
  }
  stats_.latency.record(nanoseconds(latency));
}

asio::awaitable<void> Connection::run() {
  const bool open_loop = plan_.openLoop();
  // Open loop: this connection's slots are interval apart, offset so that the C connections
  // together send one request every interval / C — the requested total rate.
  Clock::duration interval{}, offset{};
  if (open_loop) {
    interval = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(plan_.connections / plan_.rate_per_s));
    offset = interval * id_ / plan_.connections;
  }
  Clock::rep slot = 0;  // the next open-loop slot to send

  for (;;) {
    auto now = Clock::now();
    auto scheduled =
        open_loop ? plan_.start + offset + interval * slot : std::max(now, plan_.start);
    if (scheduled >= plan_.end || now >= plan_.end) break;  // a backlog is not drained past the end

    if (!socket_.is_open() && !co_await connect()) {
      if (auto failed = Clock::now(); failed >= plan_.measure_start && failed <= plan_.end)
        ++stats_.err_connect;
      co_await sleepUntil(std::min(Clock::now() + kReconnectBackoff, plan_.end));
      continue;
    }
    // Ready to send (previous reply in, connection up) only after the scheduled time: the request
    // waited in the queue, as in Postfix, and the wait is the server's. Ready before: any lateness
    // past the schedule is the generator's timer waking up late, reported apart as send lag.
    const bool queued = open_loop && Clock::now() > scheduled;
    if (scheduled > Clock::now()) co_await sleepUntil(scheduled);
    if (plan_.request_limit != 0 &&
        plan_.requests_counted->load(std::memory_order_relaxed) >= plan_.request_limit)
      break;
    ++slot;

    out_.clear();
    stream_.appendNextRequest(out_);
    auto sent = Clock::now();
    if (open_loop && !queued && sent >= plan_.measure_start)
      stats_.send_lag.record(nanoseconds(sent - scheduled));
    auto outcome = co_await exchange();
    auto done = Clock::now();
    count(outcome, done - (queued ? scheduled : sent), done);
    if (outcome >= Outcome::kClosed) {
      boost::system::error_code ignored;
      socket_.close(ignored);  // a late or stray reply would put the stream out of step: reconnect
    }
  }

  if (open_loop && plan_.request_limit == 0) {  // the window's slots this connection never reached
    auto slotsBefore = [&](Clock::time_point when) -> Clock::rep {  // slots scheduled before `when`
      auto first = plan_.start + offset;
      if (when <= first) return 0;
      return (when - first + interval - Clock::duration(1)) / interval;
    };
    auto from = std::max(slot, slotsBefore(plan_.measure_start));
    auto to = slotsBefore(plan_.end);
    if (to > from) stats_.unsent += static_cast<uint64_t>(to - from);
  }
  running_ = false;
  watchdog_timer_.cancel();
  boost::system::error_code ignored;
  socket_.close(ignored);
}

// Wakes at the armed deadline (or once per timeout while idle) and closes a socket whose request
// or connect took too long; the pending operation then fails and is counted as a timeout.
asio::awaitable<void> Connection::watchdog() {
  while (running_) {
    auto now = Clock::now();
    if (armed_ && deadline_ <= now) {
      timed_out_ = true;
      armed_ = false;
      boost::system::error_code ignored;
      socket_.close(ignored);
    }
    watchdog_timer_.expires_at(armed_ && deadline_ > now ? deadline_ : now + plan_.timeout);
    co_await watchdog_timer_.async_wait(kAwait);
  }
}

Worker::Worker(const RunPlan& plan, const std::vector<uint32_t>& connection_ids) {
  for (auto id : connection_ids)
    connections_.push_back(std::make_unique<Connection>(context_, plan, stats_, id));
}

Worker::~Worker() = default;

void Worker::run() {
  // Timers fire within a microsecond instead of the default 50 us slack: open-loop schedules.
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  for (auto& connection : connections_) connection->start(context_);
  context_.run();
}

}  // namespace saslguard::bench
