// reply.hpp — the actions saslguard answers with and the reply line Postfix expects:
// "action=<ACTION> [text]" followed by an empty line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace saslguard::protocol {

// Ordered by severity: when verdicts disagree, the greatest wins.
enum class Action : std::uint8_t { Dunno = 0, Hold = 1, Defer = 2, Reject = 3 };

std::string_view actionName(Action action);                // "DUNNO", "HOLD", "DEFER", "REJECT"
std::optional<Action> parseAction(std::string_view name);  // case-insensitive

// Appends the reply to `out`. Text is made safe for the one-line protocol (CR/LF removed).
// REJECT and DEFER texts should start with an enhanced status code ("5.7.1 ...").
void appendReply(std::string& out, Action action, std::string_view text);

}  // namespace saslguard::protocol
