// import_config.hpp — `saslguard import-config --from uvsq-policyd|abusix-auth-ppd|geoip-policyd
// FILE`:
// converts another policy daemon's configuration into saslguard TOML. The conversion itself is
// a pure function (golden-tested); the command only reads, writes and prints the notes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace saslguard::cli {

struct ImportResult {
  std::string toml;
  std::vector<std::string> notes;  // what could not be mapped, or maps with a difference
};

// UVSQ policyd (go-policyd) `key=value` lines; `source` names the file in notes and comments.
ImportResult importUvsqPolicyd(std::string_view text, std::string_view source);

// The Abusix AUTH policy daemon's abusix_auth_ppd.ini (npm `ini`: [sections], key = value,
// ; and # comments). `directory` resolves a relative `command` (the daemon's own directory).
ImportResult importAbusixAuthPpd(std::string_view text, std::string_view source,
                                 std::string_view directory);

// geoip-policyd's options: GEOIPPOLICYD_* lines (its systemd EnvironmentFile) and/or its command
// line (`geoip-policyd server --max-ips 5 ...`, flags anywhere in the text); as in geoip-policyd,
// a non-empty environment value wins over the flag.
ImportResult importGeoipPolicyd(std::string_view text, std::string_view source);

}  // namespace saslguard::cli
