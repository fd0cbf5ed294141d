// verdict.hpp — what a detector concludes about one request, and the identity it was judged
// under. A DUNNO verdict means "no opinion"; the most severe verdict decides the reply.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/reply.hpp"

namespace saslguard::engine {

using protocol::Action;

// The account a request is attributed to, after normalisation (and later, LDAP mapping).
struct Identity {
  std::string account;
  bool authenticated = false;  // came from sasl_username
};

// A message a detector counted, for the event log (set even when the verdict is DUNNO).
struct CountedMessage {
  std::uint64_t recipients = 0;
  std::uint64_t window_total = 0;  // including this message
};

struct Verdict {
  Action action = Action::Dunno;
  std::string_view detector;  // the detector's name (static storage)
  std::string reason;         // one line for the log and the operator
  std::string evidence;       // a JSON object with the details, for the registry and the API
  std::string reply_text;     // empty: the default text for the action
  bool mark = false;          // mark the account compromised when enforced
  std::optional<CountedMessage> counted;
  std::chrono::seconds mark_for{0};  // the mark expires after this long; 0: until cleared
  bool lookup_failed = false;        // a lookup failed: the answer is the failure action

  // A DUNNO verdict that marks (a log-only listing) is an opinion too: it is recorded.
  bool hasOpinion() const { return action != Action::Dunno || mark; }
};

}  // namespace saslguard::engine
