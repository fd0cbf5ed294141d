// zones.cpp — see zones.hpp.
#include "config/zones.hpp"

#include "common/strings.hpp"

namespace saslguard::config {

std::string_view zoneKindName(ZoneSpec::Kind kind) {
  return kind == ZoneSpec::Kind::kClientIp ? "client-ip" : "hashed-recipient";
}

namespace {

bool validZoneName(std::string_view name) {
  if (name.empty() || name.size() > 200 || name.front() == '.' || name.find("..") != name.npos) {
    return false;
  }
  for (const char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::vector<std::string_view> words(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    const auto start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t') ++i;
    if (i > start) out.push_back(text.substr(start, i - start));
  }
  return out;
}

}  // namespace

Result<ZoneSpec> parseZoneSpec(std::string_view text) {
  static constexpr std::string_view kExpected =
      "expected KIND ZONE [key] [listed=CODES] [action=ACTION] [test=ITEM], KIND client-ip or "
      "hashed-recipient";
  const auto parts = words(text);
  if (parts.size() < 2) return fail(std::string(kExpected));
  ZoneSpec spec;
  spec.text = std::string(text);
  if (parts[0] == "client-ip") {
    spec.kind = ZoneSpec::Kind::kClientIp;
  } else if (parts[0] == "hashed-recipient") {
    spec.kind = ZoneSpec::Kind::kHashedRecipient;
  } else {
    return fail("unknown kind '" + std::string(parts[0]) + "': " + std::string(kExpected));
  }
  auto zone = toLowerAscii(parts[1]);
  if (zone.ends_with('.')) zone.pop_back();
  if (!validZoneName(zone)) return fail("'" + std::string(parts[1]) + "' is not a zone name");
  spec.zone = std::move(zone);
  for (std::size_t i = 2; i < parts.size(); ++i) {
    const auto part = parts[i];
    if (part == "key") {
      spec.keyed = true;
    } else if (part.starts_with("listed=")) {
      auto codes = part.substr(7);
      while (!codes.empty()) {
        const auto bar = codes.find('|');
        const auto code = codes.substr(0, bar);
        auto network = parseNetwork(code);
        if (!network || !network->base.is_v4() ||
            !Network{*parseAddress("127.0.0.0"), 8}.contains(network->base)) {
          return fail("listed: '" + std::string(code) +
                      "' is not an address or network in 127.0.0.0/8");
        }
        spec.listed.push_back(*network);
        codes = bar == std::string_view::npos ? std::string_view() : codes.substr(bar + 1);
      }
      if (spec.listed.empty()) return fail("listed= needs at least one code such as 127.0.0.4");
    } else if (part.starts_with("action=")) {
      const auto action = toUpperAscii(part.substr(7));
      if (action != "REJECT" && action != "HOLD" && action != "DEFER" && action != "LOG") {
        return fail("action: expected REJECT, HOLD, DEFER or LOG, not '" +
                    std::string(part.substr(7)) + "'");
      }
      spec.action = action;
    } else if (part.starts_with("test=")) {
      spec.test_item = std::string(part.substr(5));
      if (spec.test_item.empty()) return fail("test= needs an item (an IP address or a text)");
      if (spec.kind == ZoneSpec::Kind::kClientIp && !parseAddress(spec.test_item)) {
        return fail("test: '" + spec.test_item + "' is not an IP address");
      }
    } else {
      return fail("unknown word '" + std::string(part) + "': " + std::string(kExpected));
    }
  }
  return spec;
}

Result<void> checkZoneSpec(std::string_view text) {
  auto spec = parseZoneSpec(text);
  if (!spec) return tl::unexpected(spec.error());
  return {};
}

std::vector<std::string> presetZones(std::string_view preset) {
  if (preset == "abusix") {
    return {"client-ip authbl.mail.abusix.zone key listed=127.0.0.4 test=127.0.0.2",
            "hashed-recipient authbl-rcpt.mail.abusix.zone key"};
  }
  return {};
}

}  // namespace saslguard::config
