// request_labels.hpp — the metrics labels of the protocol's stages and actions, for the request
// path (server, engine). Header-only, so sg_common (metrics.cpp) does not depend on sg_protocol.
#pragma once

#include "metrics/metrics.hpp"
#include "protocol/reply.hpp"
#include "protocol/request.hpp"

namespace saslguard::metrics {

static_assert(static_cast<int>(protocol::Action::Dunno) == static_cast<int>(ActionLabel::Dunno) &&
                  static_cast<int>(protocol::Action::Hold) == static_cast<int>(ActionLabel::Hold) &&
                  static_cast<int>(protocol::Action::Defer) ==
                      static_cast<int>(ActionLabel::Defer) &&
                  static_cast<int>(protocol::Action::Reject) ==
                      static_cast<int>(ActionLabel::Reject),
              "ActionLabel indexes the same actions as protocol::Action");

inline ActionLabel actionLabel(protocol::Action action) {
  return static_cast<ActionLabel>(action);
}

inline StageLabel stageLabel(protocol::Stage stage) {
  switch (stage) {
    case protocol::Stage::Rcpt:
      return StageLabel::Rcpt;
    case protocol::Stage::EndOfMessage:
      return StageLabel::EndOfMessage;
    default:
      return StageLabel::Other;
  }
}

// One reply: `parsed_at` is when the request was complete.
inline void countReply(const protocol::Request& request, protocol::Action action,
                       std::chrono::steady_clock::time_point parsed_at) {
  countReply(stageLabel(request.stage()), actionLabel(action),
             std::chrono::steady_clock::now() - parsed_at);
}

// One verdict with an opinion; `detector` is Verdict::detector (or "registry").
inline void countVerdict(std::string_view detector, protocol::Action action, bool shadow) {
  countVerdict(detectorLabel(detector), actionLabel(action), shadow);
}

}  // namespace saslguard::metrics
