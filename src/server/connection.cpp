// connection.cpp — see connection.hpp. The buffer holds at most one request's limit plus one read;
// the parser discards anything larger, so a peer cannot make it grow without bound. Requests that
// wait (lookups, a Redis store) leave the synchronous loop and are awaited in run().
#include "server/connection.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstring>

#include "common/log.hpp"
#include "metrics/metrics.hpp"
#include "metrics/request_labels.hpp"
#include "server/policy_server.hpp"

namespace saslguard::server {
namespace {

constexpr std::size_t kReadChunk = 16384;

}  // namespace

Connection::Connection(Socket socket, Worker& worker, std::atomic<std::int64_t>& open_count)
    : socket_(std::move(socket)),
      worker_(worker),
      open_count_(open_count),
      parser_(worker.limits.protocol),
      last_activity_(std::chrono::steady_clock::now()) {
  metrics::gauges().connections_open.fetch_add(1, std::memory_order_relaxed);
}

Connection::~Connection() {
  open_count_.fetch_sub(1, std::memory_order_relaxed);
  metrics::gauges().connections_open.fetch_sub(1, std::memory_order_relaxed);
}

void Connection::close() {
  boost::system::error_code ignored;
  socket_.shutdown(Socket::shutdown_both, ignored);
  socket_.close(ignored);
}

// Answers the complete requests at the front of `input`; `consumed` says how much was used.
bool Connection::answer(std::string_view input, std::size_t& consumed) {
  const auto& pipeline = *worker_.pipeline;
  for (;;) {
    const auto outcome = parser_.parse(input.substr(consumed), request_);
    switch (outcome.status) {
      case protocol::ParseStatus::Complete: {
        parsed_at_ = std::chrono::steady_clock::now();  // the latency histogram's start
        last_activity_ = parsed_at_;
        const auto now = Clock::now();
        // Lookups once per message: Postfix sends all of a message's requests on one connection.
        if (pipeline.hasLookups()) {
          const bool first_of_message =
              request_.get(protocol::Attr::instance) != looked_up_instance_;
          if ((first_of_message || pipeline.mapsIdentities()) &&
              pipeline.needsLookups(request_, now, first_of_message)) {
            if (first_of_message) looked_up_instance_ = request_.get(protocol::Attr::instance);
            detector_lookups_ = first_of_message;
            needs_lookups_ = true;
            consumed += outcome.consumed;
            return true;
          }
        }
        // A store on the network (Redis) is awaited, never waited for on this thread.
        if (pipeline.awaitsStore()) {
          needs_lookups_ = false;
          consumed += outcome.consumed;
          return true;
        }
        metrics::countReply(request_, pipeline.decide(request_, now, output_), parsed_at_);
        break;
      }
      case protocol::ParseStatus::Malformed:
      case protocol::ParseStatus::Oversized: {
        const bool oversized = outcome.status == protocol::ParseStatus::Oversized;
        if (oversized) {
          SASLGUARD_COUNT(oversized_total);
        } else {
          SASLGUARD_COUNT(malformed_total);
        }
        if (log::peerWarningAllowed()) {
          spdlog::warn("{} policy request: {} (answered {})", oversized ? "oversized" : "malformed",
                       outcome.problem, protocol::actionName(worker_.limits.malformed_action));
        }
        protocol::appendReply(output_, worker_.limits.malformed_action, {});
        metrics::countReply(metrics::StageLabel::Other,
                            metrics::actionLabel(worker_.limits.malformed_action), {});
        break;
      }
      case protocol::ParseStatus::NeedMore:
        break;
    }
    consumed += outcome.consumed;
    if (outcome.status == protocol::ParseStatus::NeedMore && outcome.consumed == 0) return false;
  }
}

asio::awaitable<void> Connection::run() {
  const auto self = shared_from_this();  // lives in the coroutine frame until it ends
  try {
    for (;;) {
      std::size_t consumed = 0;
      while (answer({input_.data(), input_size_}, consumed)) {
        // request_ still points into input_, which stays put until the memmove below. The
        // pipeline is held: a reload during the lookup must not free it.
        const auto pipeline = worker_.pipeline;
        const auto now = Clock::now();
        engine::Lookups lookups;
        const auto* looked_up = needs_lookups_ ? &lookups : nullptr;
        auto action = engine::Action::Dunno;
        if (needs_lookups_ && pipeline->awaitsStore()) {
          // Redis: the lookups and the store's round trip at once.
          action = co_await pipeline->lookUpAndDecideAsync(
              request_, now, output_, worker_.enrichersFor(*pipeline), detector_lookups_, lookups);
        } else {
          if (needs_lookups_) {
            lookups = co_await pipeline->lookups(request_, now, worker_.enrichersFor(*pipeline),
                                                 detector_lookups_);
          }
          if (pipeline->awaitsStore()) {
            action = co_await pipeline->decideAsync(request_, now, output_, looked_up);
          } else {
            action = pipeline->decide(request_, now, output_, looked_up);
          }
        }
        if (lookups.failed) looked_up_instance_.clear();  // the next RCPT tries again
        metrics::countReply(request_, action, parsed_at_);
      }
      if (consumed > 0) {
        std::memmove(input_.data(), input_.data() + consumed, input_size_ - consumed);
        input_size_ -= consumed;
      }
      if (!output_.empty()) {
        co_await asio::async_write(socket_, asio::buffer(output_), asio::use_awaitable);
        output_.clear();
      }
      const bool nothingPending = input_size_ == 0 && !parser_.inRequest();
      if (worker_.stopping && nothingPending) break;

      // Only a connection suspended here with nothing half received may be closed by a stop;
      // one suspended in the write above still owes its peer a reply.
      waiting_for_request_ = nothingPending;
      // The buffer only grows (zero-filled once): resizing it around every read cleared 16 KiB
      // per request, ~1 % of the daemon's CPU in perf.
      if (input_.size() < input_size_ + kReadChunk) input_.resize(input_size_ + kReadChunk);
      boost::system::error_code ec;
      const auto n =
          co_await socket_.async_read_some(asio::buffer(input_.data() + input_size_, kReadChunk),
                                           asio::redirect_error(asio::use_awaitable, ec));
      waiting_for_request_ = false;
      input_size_ += n;
      if (ec) throw boost::system::system_error(ec);
      // Bytes alone are not activity: a peer dripping a request a byte at a time, or one that
      // never reads its replies, is closed by the idle sweep like a silent one.
    }
  } catch (const boost::system::system_error& e) {
    const bool halfway = input_size_ > 0 || parser_.inRequest();
    if (halfway && e.code() == asio::error::eof) {
      SASLGUARD_COUNT(truncated_total);
      if (log::peerWarningAllowed()) {
        spdlog::warn("policy connection closed in the middle of a request ({} bytes unanswered)",
                     input_size_);
      }
    } else if (e.code() != asio::error::eof && e.code() != asio::error::operation_aborted &&
               e.code() != asio::error::connection_reset &&
               e.code() != asio::error::bad_descriptor) {
      spdlog::debug("policy connection error: {}", e.code().message());
    }
  }
  close();
  worker_.connections.erase(self);
}

}  // namespace saslguard::server
