// options.hpp — the option table: every member of Settings, once, with its section, key, type,
// range or allowed values, one-line help and since-version. The loader, the environment and flag
// names, effectiveToml(), etc/saslguard.toml and docs/configuration.md are all generated from it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.hpp"
#include "config/settings.hpp"

namespace saslguard::config {

enum class OptionType { kString, kBool, kInt, kStringList, kEnum };

// A value of any option, as read from or written to Settings (int members travel as int64).
using Value = std::variant<std::string, bool, std::int64_t, std::vector<std::string>>;

// Checks one string value or list entry beyond its type (see checks.hpp).
using ItemCheck = Result<void> (*)(std::string_view);

inline constexpr std::string_view kSecretMask = "********";
inline constexpr std::string_view kEnvPrefix = "SASLGUARD_";

struct Option {
  std::string section;  // a TOML table path: "server", "detectors.denylist"
  std::string key;      // "max_connections"
  OptionType type = OptionType::kString;
  std::int64_t min = 0;  // kInt: accepted range, inclusive
  std::int64_t max = 0;
  std::vector<std::string> allowed;       // kEnum: canonical spellings, matched ignoring case
  ItemCheck check = nullptr;              // kString, kStringList: applied to each entry
  std::vector<std::string> flag_aliases;  // shortcut flags without dashes, e.g. "listen"
  std::string help;                       // one line, no final full stop
  std::string since = "0.1";
  bool secret = false;  // shown as ******** in the effective config, the docs and errors
  std::function<Value(const Settings&)> read;
  std::function<void(Settings&, Value)> write;

  std::string name() const;     // "detectors.denylist.action"
  std::string envName() const;  // "SASLGUARD_DETECTORS_DENYLIST_ACTION"
  std::string flagName()
      const;  // "detectors-denylist-action" (used as --detectors-denylist-action)
  std::string typeText() const;  // "integer 1..1000000", "one of: stderr, syslog, json", ...
};

// The table, in documentation order. Built once; a malformed entry is a bug and aborts.
const std::vector<Option>& options();
// Section names in table order ("server", ..., "detectors.denylist").
const std::vector<std::string>& sections();
// One sentence saying what a section is for (docs and the sample file).
std::string sectionHelp(std::string_view section);
const Option* findOption(std::string_view name);  // by "section.key"
const Option* findOptionByEnv(std::string_view variable);

// Checks and normalises one string value or list entry: enum spelling (case-insensitive, stored
// canonically, e.g. actions upper case) and the item check. The error reason ends in the value.
Result<std::string> checkString(const Option& option, std::string_view text);
Result<std::int64_t> checkInt(const Option& option, std::int64_t value);
// Text from the environment or a flag: booleans true/false/yes/no/on/off/1/0, integers in
// decimal, lists comma-separated (blank entries dropped). One reason per bad entry.
tl::expected<Value, std::vector<std::string>> parseText(const Option& option,
                                                        std::string_view text);

// The value as a TOML literal ("text", 42, true, ["a", "b"]); secrets as "********".
std::string formatValue(const Option& option, const Value& value);
std::string formatValue(const Option& option, const Settings& settings);
std::string formatDefault(const Option& option);
// A value inside an error message: quoted and escaped, or the mask for secrets.
std::string shownInError(const Option& option, std::string_view text);

// Options whose values differ (reload logging, round-trip tests).
std::vector<const Option*> changedOptions(const Settings& before, const Settings& after);

// Closest candidate by edit distance, ignoring case, if close enough to be a likely typo.
std::string closestMatch(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace saslguard::config
