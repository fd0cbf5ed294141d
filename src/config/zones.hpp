// zones.hpp — the reputation zone entries of detectors.reputation.zones, one line each:
// "KIND ZONE [key] [listed=CODES] [action=ACTION] [test=ITEM]", and the vendor presets. The
// option check and the detector parse with the same function.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/network.hpp"
#include "common/result.hpp"

namespace saslguard::config {

struct ZoneSpec {
  enum class Kind { kClientIp, kHashedRecipient };
  Kind kind = Kind::kClientIp;
  std::string zone;                   // "authbl.mail.abusix.zone", lower case, no trailing dot
  bool keyed = false;                 // the API key goes between the reversed item and the zone
  std::vector<Network> listed;        // answers that count as listed; empty: any in 127.0.0.0/8
  std::optional<std::string> action;  // REJECT | HOLD | DEFER | LOG; none: the detector's
  std::string test_item;  // a test point that must answer as listed ("127.0.0.2"); "" none
  std::string text;       // the entry as written (logs, errors)
};

std::string_view zoneKindName(ZoneSpec::Kind kind);  // "client-ip" | "hashed-recipient"

// One entry. The error says what was expected (the caller adds the entry).
Result<ZoneSpec> parseZoneSpec(std::string_view text);
Result<void> checkZoneSpec(std::string_view text);

// The zones a preset stands for: "abusix" = authbl.mail.abusix.zone (client IP, 127.0.0.4,
// test point 127.0.0.2) and authbl-rcpt.mail.abusix.zone (hashed recipient), both keyed.
std::vector<std::string> presetZones(std::string_view preset);

}  // namespace saslguard::config
