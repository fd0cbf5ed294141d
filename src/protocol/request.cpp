// request.cpp — attribute lookup for Request. Postfix sends attributes in a fixed order, so the
// name is first compared with the one expected next; only a miss searches the whole table.
#include "protocol/request.hpp"

namespace saslguard::protocol {
namespace {

constexpr std::array<std::string_view, kKnownAttributes> kNames = {
#define SASLGUARD_ATTR_NAME(name) #name,
    SASLGUARD_POLICY_ATTRIBUTES(SASLGUARD_ATTR_NAME)
#undef SASLGUARD_ATTR_NAME
};

constexpr std::array<std::pair<std::string_view, Stage>, 10> kStages = {{
    {"RCPT", Stage::Rcpt},
    {"END-OF-MESSAGE", Stage::EndOfMessage},
    {"DATA", Stage::Data},
    {"MAIL", Stage::Mail},
    {"CONNECT", Stage::Connect},
    {"EHLO", Stage::Ehlo},
    {"HELO", Stage::Helo},
    {"VRFY", Stage::Vrfy},
    {"ETRN", Stage::Etrn},
    {"BDAT", Stage::Bdat},
}};

}  // namespace

std::string_view attributeName(Attr attr) {
  return kNames[static_cast<std::size_t>(attr)];
}

std::string_view stageName(Stage stage) {
  for (const auto& [name, value] : kStages) {
    if (value == stage) return name;
  }
  return "UNKNOWN";
}

Stage parseStage(std::string_view protocol_state) {
  for (const auto& [name, value] : kStages) {
    if (name == protocol_state) return value;
  }
  return Stage::Unknown;
}

void Request::clear() {
  known_.fill(std::string_view());
  present_.fill(false);
  attributes_.clear();
  next_expected_ = 0;
}

void Request::add(std::string_view name, std::string_view value) {
  attributes_.push_back({name, value});
  std::size_t index = kKnownAttributes;
  if (next_expected_ < kKnownAttributes && kNames[next_expected_] == name) {
    index = next_expected_;
  } else {
    for (std::size_t i = 0; i < kKnownAttributes; ++i) {
      if (kNames[i] == name) {
        index = i;
        break;
      }
    }
  }
  if (index == kKnownAttributes) return;  // unknown attribute: kept in attributes_ only
  known_[index] = value;
  present_[index] = true;
  next_expected_ = index + 1;
}

std::string_view Request::find(std::string_view name) const {
  for (auto it = attributes_.rbegin(); it != attributes_.rend(); ++it) {
    if (it->name == name) return it->value;
  }
  return {};
}

}  // namespace saslguard::protocol
