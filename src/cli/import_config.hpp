// import_config.hpp — `saslguard import-config --from uvsq-policyd policyd.cfg [-o out.toml]`:
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

}  // namespace saslguard::cli
