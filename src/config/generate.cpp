// generate.cpp — text generated from the option table: the effective configuration
// (check-config, loadable again), the commented sample etc/saslguard.toml and the reference
// docs/configuration.md. Tests keep the committed copies equal to this output.
#include <string>

#include "config/loader.hpp"
#include "config/options.hpp"

namespace saslguard::config {

namespace {

// "worker threads" -> "Worker threads."
std::string sentence(std::string_view text) {
  std::string out(text);
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 32);
  return out + ".";
}

// "# Integer 0..1024." under the help line; plain strings need no such line.
std::string typeLine(const Option& option) {
  return option.type == OptionType::kString ? "" : "# " + sentence(option.typeText()) + "\n";
}

std::string markdownCell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

std::string code(std::string_view text) {
  return "`" + markdownCell(text) + "`";
}

}  // namespace

std::string effectiveToml(const Settings& settings) {
  std::string out =
      "# saslguard effective configuration: every option with the value in force (secrets\n"
      "# masked). Values that differ from the built-in default say so in a comment.\n";
  out += "# Configuration file: " +
         (settings.source_path.empty() ? std::string("none (built-in defaults)")
                                       : settings.source_path) +
         "\n";
  std::string section;
  for (const auto& option : options()) {
    if (option.section != section) {
      section = option.section;
      out += "\n[" + section + "]\n";
    }
    const auto value = formatValue(option, settings);
    const auto fallback = formatDefault(option);
    out += option.key + " = " + value;
    if (value != fallback) out += "  # default: " + fallback;
    out += "\n";
  }
  return out;
}

std::string sampleToml() {
  std::string out =
      "# saslguard.toml — sample configuration: every option, commented out at its default.\n"
      "# Settings come from, strongest first: command-line flags (--server-max-connections 2000),\n"
      "# the environment (SASLGUARD_SERVER_MAX_CONNECTIONS=2000), this file, built-in defaults.\n"
      "# Unknown options are errors. Reference: docs/configuration.md.\n"
      "# Generated from the option table in src/config/options.cpp.\n";
  std::string section;
  for (const auto& option : options()) {
    if (option.section != section) {
      section = option.section;
      out += "\n# " + sectionHelp(section) + "\n[" + section + "]\n";
    }
    out += "\n# " + sentence(option.help) + "\n" + typeLine(option);
    out += "#" + option.key + " = " + formatDefault(option) + "\n";
  }
  return out;
}

std::string markdownReference() {
  std::string out = R"(# Configuration reference

<!-- Generated from the option table (src/config/options.cpp) by markdownReference(); do not
     edit. Regenerate: SASLGUARD_REGENERATE_DOCS=1 <build>/tests/saslguard_config_tests -->

saslguard runs on built-in defaults. Every option below can be set in the configuration file, in
the environment or on the command line; when one is set in several places, the strongest wins:

1. **Command-line flag**: `--<section>-<key> VALUE`, dots and underscores turned into dashes
   (`--server-max-connections 2000`, `--detectors-denylist-action HOLD`, `--state-dir DIR`);
   `--listen` is short for `--server-listen`.
2. **Environment**: `SASLGUARD_<SECTION>_<KEY>`, upper case, dots turned into underscores
   (`SASLGUARD_DETECTORS_DENYLIST_ACCOUNTS=a@example.org,b@example.org`).
3. **Configuration file**: TOML, `/etc/saslguard/saslguard.toml` unless `--config FILE` (`-c FILE`)
   or the variable `SASLGUARD_CONFIG` names another. Each section is a TOML table (`[server]`,
   `[detectors.denylist]`). A missing file at the default path is fine (the daemon runs on its
   defaults); a file named explicitly must exist. `etc/saslguard.toml` is a commented sample.
4. **Built-in default**: the Default column below.

In the environment and on the command line, lists are comma-separated and a list flag may be
repeated; a list set there replaces the list from weaker sources rather than adding to it.
Booleans accept `true`/`false`, `yes`/`no`, `on`/`off` and `1`/`0`. Choices are case-insensitive;
actions (`REJECT`, `DEFER`, `HOLD`, `DUNNO`) are stored in upper case.

All errors are reported at once, each naming the file and line, the variable or the flag:

    /etc/saslguard/saslguard.toml:12: server.max_connections: expected an integer from 1 to 1000000, got "abc"
    /etc/saslguard/saslguard.toml:14: server.max_conections: unknown option (did you mean max_connections?)
    env SASLGUARD_LOG_LEVEL: log.level: expected one of trace, debug, info, warn, error, off, got "loud"

Unknown options and sections are errors, in the file and for variables that start like a section
(`SASLGUARD_SERVER_...`); other `SASLGUARD_*` variables are not settings and are ignored.
)";
  std::string section;
  for (const auto& option : options()) {
    if (option.section != section) {
      section = option.section;
      out += "\n## [" + section + "]\n\n" + sectionHelp(section) + "\n\n";
      out += "| Option | Type | Default | Environment | Flag | Description | Since |\n";
      out += "|---|---|---|---|---|---|---|\n";
    }
    std::string flags = code("--" + option.flagName());
    for (const auto& alias : option.flag_aliases) flags += ", " + code("--" + alias);
    out += "| " + code(option.key) + " | " + markdownCell(option.typeText()) + " | " +
           code(formatDefault(option)) + " | " + code(option.envName()) + " | " + flags + " | " +
           markdownCell(sentence(option.help)) + " | " + option.since + " |\n";
  }
  return out;
}

}  // namespace saslguard::config
