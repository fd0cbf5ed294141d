// template.cpp — expands the operator's subject and body templates ({account}, {attr:NAME}, ...)
// and formats the times the hook and the mail show. Values come from an attacker-influenced
// request, so they are inserted once and never expanded again.
#include <ctime>
#include <optional>

#include "notify/notifier.hpp"

namespace saslguard::notify {
namespace {

std::optional<std::string> placeholderValue(std::string_view name, const Notice& notice) {
  if (name == "account") return notice.account;
  if (name == "detector") return notice.detector;
  if (name == "action") return notice.action;
  if (name == "reason") return notice.reason;
  if (name == "evidence") return notice.evidence;
  if (name == "client_address") return notice.client_address;
  if (name == "time") return formatRfc3339(notice.at);
  constexpr std::string_view kAttributePrefix = "attr:";
  if (name.substr(0, kAttributePrefix.size()) == kAttributePrefix) {
    const auto attribute = name.substr(kAttributePrefix.size());
    std::string value;  // a request without the attribute gives an empty value
    for (const auto& [key, text] : notice.attributes) {
      if (key == attribute) value = text;  // the last one wins, as Postfix's own parsing does
    }
    return value;
  }
  return std::nullopt;
}

}  // namespace

std::string formatRfc3339(TimePoint at) {
  const std::time_t seconds = Clock::to_time_t(at);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);  // digits only: locale-proof
  return text;
}

std::string expandTemplate(std::string_view text, const Notice& notice) {
  std::string out;
  out.reserve(text.size() + notice.account.size() + notice.evidence.size());
  std::size_t position = 0;
  while (position < text.size()) {
    const auto open = text.find('{', position);
    if (open == std::string_view::npos) break;
    const auto close = text.find('}', open + 1);
    if (close == std::string_view::npos) break;
    // "{a{account}": the innermost '{' before the '}' starts the placeholder.
    const auto inner_open = text.rfind('{', close);
    out.append(text.substr(position, inner_open - position));
    const auto name = text.substr(inner_open + 1, close - inner_open - 1);
    if (auto value = placeholderValue(name, notice)) {
      out.append(*value);
    } else {
      out.append(text.substr(inner_open, close - inner_open + 1));  // unknown: left as written
    }
    position = close + 1;
  }
  out.append(text.substr(position));
  return out;
}

}  // namespace saslguard::notify
