// event.hpp — one row of the event log (UVSQ policyd's `events` table, extended) and the sink the
// pipeline hands counted messages to. The sink never blocks the request path: offer() queues or
// drops (and counts the drop).
#pragma once

#include <cstdint>
#include <string>

#include "common/clock.hpp"

namespace saslguard::eventlog {

struct EventRow {
  TimePoint ts{};             // when the message was counted (millisecond precision)
  std::string sasl_username;  // the account, as the pipeline identified it
  std::string sender;
  std::string client_address;
  std::uint64_t recipient_count = 0;
  std::uint64_t window_total = 0;  // the detector's window total including this message
  std::string action;              // the final answer: DUNNO, HOLD, DEFER, REJECT
  std::string detector;            // the detector that counted it ("quota")
  bool shadow = false;             // that detector runs in shadow mode
};

class EventSink {
 public:
  virtual ~EventSink() = default;
  // Queues the row for writing; false when it was dropped (queue full). Never blocks.
  virtual bool offer(EventRow&& row) noexcept = 0;
};

}  // namespace saslguard::eventlog
