// reply.cpp — see reply.hpp. DEFER makes Postfix answer 4xx (the client retries); HOLD without
// text is logged with Postfix's own wording.
#include "protocol/reply.hpp"

#include <array>

#include "common/strings.hpp"

namespace saslguard::protocol {
namespace {
constexpr std::array<std::string_view, 4> kActionNames = {"DUNNO", "HOLD", "DEFER", "REJECT"};
}

std::string_view actionName(Action action) {
  return kActionNames[static_cast<int>(action)];
}

std::optional<Action> parseAction(std::string_view name) {
  for (std::size_t i = 0; i < kActionNames.size(); ++i) {
    if (equalsIgnoreCase(kActionNames[i], name)) return static_cast<Action>(i);
  }
  return std::nullopt;
}

void appendReply(std::string& out, Action action, std::string_view text) {
  out += "action=";
  out += actionName(action);
  // DUNNO takes no text in Postfix's grammar.
  if (action != Action::Dunno && !text.empty()) {
    out += ' ';
    for (char c : text) out += (c == '\r' || c == '\n') ? ' ' : c;
  }
  out += "\n\n";
}

}  // namespace saslguard::protocol
