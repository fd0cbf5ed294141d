// loader.hpp — builds one validated Settings from the TOML file, the environment and the
// command line (flag > environment > file > default), collecting every error with its file and
// line, variable or flag. Also renders the effective configuration, the sample file and the docs.
#pragma once

#include <string>
#include <tl/expected.hpp>
#include <utility>
#include <vector>

#include "config/settings.hpp"

namespace CLI {
class App;
}

namespace saslguard::config {

inline constexpr const char* kDefaultConfigPath = "/etc/saslguard/saslguard.toml";
// Names the configuration file when --config is not given.
inline constexpr const char* kConfigPathVariable = "SASLGUARD_CONFIG";

struct ConfigError {
  std::string where;   // "file:line", "file:line:column" (syntax), "env SASLGUARD_X", "flag --x"
  std::string key;     // "server.max_connections"; empty when the error concerns no option
  std::string reason;  // "expected an integer from 1 to 1000000, got \"abc\""
  std::string text() const;  // "where: key: reason"
};

struct ConfigErrors {
  std::vector<ConfigError> errors;  // file (by line), then environment, flags, cross-checks
  std::string text() const;         // one error per line, no final newline
};

// "section.key" -> raw text, in command-line order. For a list option the first flag replaces
// the list from lower sources and later ones append; for a scalar the last one wins.
struct Overrides {
  std::vector<std::pair<std::string, std::string>> values;
};

struct LoadRequest {
  std::string config_path = kDefaultConfigPath;
  bool config_path_given = false;        // true: a missing file is an error
  std::vector<std::string> environment;  // "NAME=value"; use currentEnvironment() in production
  Overrides flags;
};

// The process environment as "NAME=value" entries.
std::vector<std::string> currentEnvironment();

// Unless config_path_given, SASLGUARD_CONFIG in request.environment names the file (and then it
// must exist). On success, source_path is the file read ("" when none was).
tl::expected<Settings, ConfigErrors> load(const LoadRequest& request);

// Registers --config/-c, --listen, --state-dir and every --section-key flag on `app`, writing
// into `request` when parsed (call before app.parse; values land in request.flags / config_path).
// `request` must outlive the parse.
void addFlags(CLI::App& app, LoadRequest& request);

std::string effectiveToml(const Settings& settings);  // every option, secrets masked, loadable
std::string sampleToml();                             // etc/saslguard.toml
std::string markdownReference();                      // docs/configuration.md

}  // namespace saslguard::config
