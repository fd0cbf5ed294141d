// loader.cpp — see loader.hpp. Sources are applied lowest first (file, environment, flags) onto
// default Settings; every value is checked where it is read, so an error names its own origin.
// Cross-option checks run last, against the merged result.
#include "config/loader.hpp"

#include <toml++/toml.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/strings.hpp"
#include "config/options.hpp"

extern char** environ;

namespace saslguard::config {

namespace {

std::string typeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string expectedType(OptionType type) {
  switch (type) {
    case OptionType::kString:
    case OptionType::kEnum:
      return "a string";
    case OptionType::kBool:
      return "a boolean (true or false)";
    case OptionType::kInt:
      return "an integer";
    case OptionType::kStringList:
      return "an array of strings";
  }
  return "";
}

bool isSection(std::string_view name) {
  const auto& all = sections();
  return std::find(all.begin(), all.end(), name) != all.end();
}

// The names of the tables directly below `path` ("" = top level) that lead to a section.
std::vector<std::string> tablesBelow(std::string_view path) {
  std::vector<std::string> names;
  for (const auto& section : sections()) {
    std::string_view rest = section;
    if (!path.empty()) {
      if (!rest.starts_with(path) || rest.size() <= path.size() || rest[path.size()] != '.') {
        continue;
      }
      rest.remove_prefix(path.size() + 1);
    }
    std::string first(rest.substr(0, rest.find('.')));
    if (std::find(names.begin(), names.end(), first) == names.end()) names.push_back(first);
  }
  return names;
}

std::vector<std::string> keysOf(std::string_view section) {
  std::vector<std::string> keys;
  for (const auto& option : options()) {
    if (option.section == section) keys.push_back(option.key);
  }
  return keys;
}

std::string upperAscii(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

std::string didYouMean(const std::string& suggestion) {
  return suggestion.empty() ? "" : " (did you mean " + suggestion + "?)";
}

std::string joinPath(std::string_view path, std::string_view key) {
  return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
}

class Loader {
 public:
  Loader() : origin_(options().size()) {}

  void loadFile(const std::string& path, bool given);
  void loadEnvironment(const std::vector<std::string>& environment);
  void loadFlags(const Overrides& flags);
  void checkCombinations();

  tl::expected<Settings, ConfigErrors> finish() &&;

 private:
  void walk(const toml::table& table, const std::string& path);
  void applyToml(const Option& option, const toml::node& node);
  bool applyText(const Option& option, std::string_view text, const std::string& where,
                 bool append);
  void fileError(const toml::source_region& at, std::string key, std::string reason);
  void error(std::string where, std::string key, std::string reason) {
    errors_.push_back({std::move(where), std::move(key), std::move(reason)});
  }
  std::size_t indexOf(const Option& option) const {
    return static_cast<std::size_t>(&option - options().data());
  }

  Settings settings_;
  std::vector<std::string> origin_;  // per option: where its value came from, "" = default
  std::string path_;
  std::vector<std::pair<toml::source_position, ConfigError>> fileErrors_;  // sorted at the end
  std::vector<ConfigError> errors_;
};

void Loader::fileError(const toml::source_region& at, std::string key, std::string reason) {
  fileErrors_.push_back(
      {at.begin, {path_ + ":" + std::to_string(at.begin.line), std::move(key), std::move(reason)}});
}

void Loader::loadFile(const std::string& path, bool given) {
  path_ = path;
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!given && status.type() == std::filesystem::file_type::not_found) return;
  if (status.type() == std::filesystem::file_type::directory) {
    error(path, "", "cannot read the configuration file: it is a directory");
    return;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error(path, "", std::string("cannot read the configuration file: ") + std::strerror(errno));
    return;
  }
  std::ostringstream content;
  content << in.rdbuf();
  toml::table root;
  try {
    root = toml::parse(content.str(), path);
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    error(path + ":" + std::to_string(at.line) + ":" + std::to_string(at.column), "",
          "TOML syntax error: " + std::string(e.description()));
    return;
  }
  settings_.source_path = path;
  walk(root, "");
}

void Loader::walk(const toml::table& table, const std::string& path) {
  for (auto&& [key, node] : table) {
    const auto name = joinPath(path, key.str());
    if (const auto* option = isSection(path) ? findOption(name) : nullptr) {
      applyToml(*option, node);
      continue;
    }
    if (!tablesBelow(name).empty() || isSection(name)) {
      if (const auto* inner = node.as_table()) {
        walk(*inner, name);
      } else {
        fileError(key.source(), name, "expected a table ([" + name + "]), got " + typeName(node));
      }
      continue;
    }
    if (node.is_table()) {
      auto guess = closestMatch(key.str(), tablesBelow(path));
      fileError(key.source(), name,
                "unknown section" + didYouMean(guess.empty() ? "" : joinPath(path, guess)));
      continue;
    }
    // A close key of this section, else the same key in another section ("sink" under
    // [replies] -> log.sink).
    auto guess = isSection(path) ? closestMatch(key.str(), keysOf(path)) : "";
    for (const auto& option : options()) {
      if (guess.empty() && option.key == key.str()) guess = option.name();
    }
    if (guess.empty() && !isSection(path)) {
      fileError(key.source(), name, "unknown option (options belong in a [section])");
    } else {
      fileError(key.source(), name, "unknown option" + didYouMean(guess));
    }
  }
}

void Loader::applyToml(const Option& option, const toml::node& node) {
  const auto wrongType = [&] {
    fileError(node.source(), option.name(),
              "expected " + expectedType(option.type) + ", got " + typeName(node));
  };
  Value value;
  switch (option.type) {
    case OptionType::kBool:
      if (!node.is_boolean()) return wrongType();
      value = node.as_boolean()->get();
      break;
    case OptionType::kInt: {
      if (!node.is_integer()) return wrongType();
      auto checked = checkInt(option, node.as_integer()->get());
      if (!checked) return fileError(node.source(), option.name(), checked.error().message);
      value = *checked;
      break;
    }
    case OptionType::kString:
    case OptionType::kEnum: {
      if (!node.is_string()) return wrongType();
      auto checked = checkString(option, node.as_string()->get());
      if (!checked) return fileError(node.source(), option.name(), checked.error().message);
      value = std::move(*checked);
      break;
    }
    case OptionType::kStringList: {
      const auto* array = node.as_array();
      if (array == nullptr) return wrongType();
      std::vector<std::string> entries;
      bool good = true;
      for (const auto& element : *array) {
        if (!element.is_string()) {
          fileError(element.source(), option.name(),
                    "expected only strings in the array, got " + typeName(element));
          good = false;
        } else if (auto checked = checkString(option, element.as_string()->get())) {
          entries.push_back(std::move(*checked));
        } else {
          fileError(element.source(), option.name(), checked.error().message);
          good = false;
        }
      }
      if (!good) return;
      value = std::move(entries);
      break;
    }
  }
  option.write(settings_, std::move(value));
  origin_[indexOf(option)] = path_ + ":" + std::to_string(node.source().begin.line);
}

bool Loader::applyText(const Option& option, std::string_view text, const std::string& where,
                       bool append) {
  auto value = parseText(option, text);
  if (!value) {
    for (auto& reason : value.error()) error(where, option.name(), std::move(reason));
    return false;
  }
  if (append) {
    auto list = std::get<std::vector<std::string>>(option.read(settings_));
    auto& more = std::get<std::vector<std::string>>(*value);
    list.insert(list.end(), more.begin(), more.end());
    *value = std::move(list);
  }
  option.write(settings_, std::move(*value));
  origin_[indexOf(option)] = where;
  return true;
}

void Loader::loadEnvironment(const std::vector<std::string>& environment) {
  for (const auto& entry : environment) {
    const auto equals = entry.find('=');
    if (equals == std::string::npos) continue;
    const std::string_view name = std::string_view(entry).substr(0, equals);
    const std::string_view text = std::string_view(entry).substr(equals + 1);
    if (!name.starts_with(kEnvPrefix) || name == kConfigPathVariable) continue;
    if (const auto* option = findOptionByEnv(name)) {
      applyText(*option, text, "env " + std::string(name), false);
      continue;
    }
    // SASLGUARD_<TABLE>_... with a known top-level table is a misspelt option; anything else
    // (SASLGUARD_CONFIG, test switches, other tools) is not a setting and is left alone.
    for (const auto& table : tablesBelow("")) {
      if (!name.starts_with(std::string(kEnvPrefix) + upperAscii(table) + "_")) continue;
      std::vector<std::string> variables;
      for (const auto& option : options()) variables.push_back(option.envName());
      error("env " + std::string(name), "",
            "unknown option" + didYouMean(closestMatch(name, variables)));
      break;
    }
  }
}

void Loader::loadFlags(const Overrides& flags) {
  std::vector<bool> seen(options().size());
  for (const auto& [name, text] : flags.values) {
    const auto* option = findOption(name);
    if (option == nullptr) {
      std::vector<std::string> names;
      for (const auto& candidate : options()) names.push_back(candidate.name());
      std::string flag = name;
      std::replace(flag.begin(), flag.end(), '.', '-');
      std::replace(flag.begin(), flag.end(), '_', '-');
      error("flag --" + flag, name, "unknown option" + didYouMean(closestMatch(name, names)));
      continue;
    }
    const bool append = option->type == OptionType::kStringList && seen[indexOf(*option)];
    if (applyText(*option, text, "flag --" + option->flagName(), append)) {
      seen[indexOf(*option)] = true;
    }
  }
}

void Loader::checkCombinations() {
  const auto& protocol = settings_.protocol;
  if (protocol.max_request_bytes < protocol.max_line_bytes) {
    const auto* option = findOption("protocol.max_request_bytes");
    const auto& where = origin_[indexOf(*option)];
    const auto& lineWhere = origin_[indexOf(*findOption("protocol.max_line_bytes"))];
    error(where.empty() ? lineWhere : where, option->name(),
          "expected at least protocol.max_line_bytes (" + std::to_string(protocol.max_line_bytes) +
              "), got " + std::to_string(protocol.max_request_bytes));
  }
}

tl::expected<Settings, ConfigErrors> Loader::finish() && {
  std::stable_sort(fileErrors_.begin(), fileErrors_.end(), [](const auto& a, const auto& b) {
    return a.first.line != b.first.line ? a.first.line < b.first.line
                                        : a.first.column < b.first.column;
  });
  ConfigErrors all;
  for (auto& [at, error] : fileErrors_) all.errors.push_back(std::move(error));
  for (auto& error : errors_) all.errors.push_back(std::move(error));
  if (!all.errors.empty()) return tl::unexpected(std::move(all));
  return std::move(settings_);
}

}  // namespace

std::string ConfigError::text() const {
  return where + ": " + (key.empty() ? "" : key + ": ") + reason;
}

std::string ConfigErrors::text() const {
  std::string out;
  for (const auto& error : errors) {
    if (!out.empty()) out += '\n';
    out += error.text();
  }
  return out;
}

std::vector<std::string> currentEnvironment() {
  std::vector<std::string> entries;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    entries.emplace_back(*entry);
  }
  return entries;
}

tl::expected<Settings, ConfigErrors> load(const LoadRequest& request) {
  std::string path = request.config_path;
  bool given = request.config_path_given;
  if (!given) {
    const std::string prefix = std::string(kConfigPathVariable) + "=";
    for (const auto& entry : request.environment) {
      if (entry.starts_with(prefix) && entry.size() > prefix.size()) {
        path = entry.substr(prefix.size());
        given = true;
      }
    }
  }
  Loader loader;
  loader.loadFile(path, given);
  loader.loadEnvironment(request.environment);
  loader.loadFlags(request.flags);
  loader.checkCombinations();
  return std::move(loader).finish();
}

}  // namespace saslguard::config
