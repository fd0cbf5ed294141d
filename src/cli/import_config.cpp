// import_config.cpp — see import_config.hpp. UVSQ policyd's reader splits each line at the first
// `=` after trimming spaces, CR and LF, ignores lines without `=`, has no comment syntax and drops
// a last line without newline (a bug this reader does not copy).
#include "cli/import_config.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>

#include "cli/commands.hpp"
#include "common/network.hpp"
#include "common/strings.hpp"

namespace saslguard::cli {
namespace {

std::string tomlString(std::string_view text) {
  return "\"" + jsonEscape(text) + "\"";
}

std::string tomlList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const auto& item : items) {
    if (out.size() > 1) out += ", ";
    out += tomlString(item);
  }
  return out + "]";
}

bool allDigits(std::string_view text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
}

bool isNetwork(std::string_view text) {
  const auto slash = text.find('/');
  return parseAddress(text.substr(0, slash)).has_value() &&
         (slash == std::string_view::npos || allDigits(text.substr(slash + 1)));
}

struct Lists {
  std::vector<std::string> accounts, senders, networks;
  void add(std::string_view entry) {
    const auto lowered = toLowerAscii(entry);
    if (isNetwork(lowered)) {
      networks.push_back(lowered);
    } else if (lowered.find('@') != std::string::npos) {
      senders.push_back(lowered);
    } else {
      accounts.push_back(lowered);
    }
  }
};

}  // namespace

ImportResult importUvsqPolicyd(std::string_view text, std::string_view source) {
  ImportResult result;
  auto& notes = result.notes;
  std::map<std::string, std::string> values;  // the last one wins, as in policyd
  Lists whitelist;
  Lists blacklist;
  std::size_t number = 0;
  for (auto line : split(text, '\n')) {
    ++number;
    line = trim(line);  // spaces, tabs, CR
    if (line.empty()) continue;
    const auto eq = line.find('=');
    const auto where = std::string(source) + ":" + std::to_string(number) + ": ";
    if (eq == std::string_view::npos) {
      notes.push_back(where + "no '=', ignored (as policyd does)");
      continue;
    }
    const auto key = std::string(trim(line.substr(0, eq)));
    const auto value = std::string(trim(line.substr(eq + 1)));
    if (key == "whitelist") {
      whitelist.add(value);
    } else if (key == "blacklist") {
      blacklist.add(value);
    } else if (key == "port" || key == "bind" || key == "defaultquota" || key == "dbuser" ||
               key == "dbpass" || key == "dbhost" || key == "dbport" || key == "dbname" ||
               key == "policy_table") {
      values[key] = value;
    } else {
      notes.push_back(where + "unknown key '" + key + "', not converted");
    }
  }
  const auto get = [&](const std::string& key) -> std::string {
    auto it = values.find(key);
    return it == values.end() ? std::string() : it->second;
  };

  auto& out = result.toml;
  out += "# saslguard configuration converted from UVSQ policyd's " + std::string(source) +
         "\n# by `saslguard import-config --from uvsq-policyd`. Check it with\n"
         "# `saslguard check-config --config FILE`; see docs/detectors/quota.md.\n";

  // [server]
  const auto port = get("port");
  auto bind = get("bind");
  if (allDigits(port)) {
    if (bind.empty()) {
      bind = "0.0.0.0";
      notes.push_back("bind is empty: policyd listened on every address; listening on 0.0.0.0");
    }
    const bool v6 = bind.find(':') != std::string::npos;
    out +=
        "\n[server]\nlisten = [" + tomlString((v6 ? "[" + bind + "]" : bind) + ":" + port) + "]\n";
  } else {
    notes.push_back(port.empty() ? "no port: server.listen keeps saslguard's default"
                                 : "port '" + port + "' is not a number: not converted");
  }

  // [identity]
  out +=
      "\n[identity]\n"
      "# policyd counts per SASL login without its domain (user@a and user@b are one account)\n"
      "strip_domain = true\n";

  // [detectors.quota]
  out += "\n[detectors.quota]\n";
  out += "# policyd answers at END-OF-MESSAGE (smtpd_end_of_data_restrictions)\n";
  out += "count_at = \"end-of-message\"\n";
  const auto quota = get("defaultquota");
  if (allDigits(quota) && quota.find_first_not_of('0') != std::string::npos && quota.size() <= 12) {
    out += "windows = [" + tomlString("24h:" + quota) + "]\n";
  } else {
    out += "windows = [\"24h:1500\"]\n";
    notes.push_back("defaultquota '" + quota +
                    "' is not a positive number (policyd then rejected every message): "
                    "using 1500");
  }
  out += "hold_factor = \"2\"\n";
  out +=
      "# policyd's whitelist applied 07:00-19:59 on Monday to Saturday (it took Saturday for a\n"
      "# working day); saslguard's weekend is Saturday and Sunday. Daemon-local time, as here.\n";
  out += "office_hours = \"Mon-Fri 07:00-19:59\"\n";
  const auto writeList = [&](const std::string& key, const std::vector<std::string>& items) {
    if (!items.empty()) out += key + " = " + tomlList(items) + "\n";
  };
  writeList("whitelist_accounts", whitelist.accounts);
  writeList("whitelist_senders", whitelist.senders);
  writeList("whitelist_networks", whitelist.networks);
  writeList("blacklist_accounts", blacklist.accounts);
  writeList("blacklist_senders", blacklist.senders);
  writeList("blacklist_networks", blacklist.networks);
  out += "blacklist_action = \"HOLD\"\n";
  out +=
      "# policyd's own reply texts, for the same Postfix log lines:\n"
      "# hold_text = \"quota exceeded\"\n"
      "# reply_text = \"max quota exceeded\"\n"
      "# blacklist_text = \"blacklisted\"\n";

  // [eventlog] as a hint: the password is not copied.
  const auto user = get("dbuser");
  const auto name = get("dbname");
  if (!user.empty() || !name.empty()) {
    const auto host = get("dbhost").empty() ? std::string("127.0.0.1") : get("dbhost");
    const auto db_port = get("dbport").empty() ? std::string("3306") : get("dbport");
    out +=
        "\n# policyd's MySQL events table. To keep writing it, uncomment and put the password\n"
        "# in place of ******** (policyd itself ignored dbhost and dbport and used "
        "127.0.0.1:3306).\n";
    out += "# [eventlog]\n# url = " +
           tomlString("mysql://" + user + ":********@" + host + ":" + db_port + "/" + name) + "\n";
    const auto table = get("policy_table");
    out += "# table = " + tomlString(table.empty() ? std::string("events") : table) + "\n";
    notes.push_back(
        "database settings written as a commented [eventlog] hint; the password is "
        "not copied");
  }
  return result;
}

namespace {

// npm `ini` 1.3: "[section]" lines, "key = value" (quotes stripped), ";" and "#" comments.
std::map<std::string, std::string> readIni(std::string_view text) {
  std::map<std::string, std::string> values;
  std::string section;
  while (!text.empty()) {
    const auto end = text.find('\n');
    auto line = trim(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.empty() || line.front() == ';' || line.front() == '#') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = std::string(trim(line.substr(1, line.size() - 2)));
      continue;
    }
    const auto equals = line.find('=');
    const auto key = trim(line.substr(0, equals));
    auto value =
        equals == std::string_view::npos ? std::string_view("true") : trim(line.substr(equals + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    values[(section.empty() ? "" : section + ".") + std::string(key)] = std::string(value);
  }
  return values;
}

}  // namespace

ImportResult importAbusixAuthPpd(std::string_view text, std::string_view source,
                                 std::string_view directory) {
  ImportResult result;
  auto& notes = result.notes;
  auto& out = result.toml;
  const auto values = readIni(text);
  const auto get = [&](const std::string& key) {
    const auto it = values.find(key);
    return it == values.end() ? std::string() : it->second;
  };
  for (const auto& [key, value] : values) {
    static const std::vector<std::string> kKnown{
        "apikey",     "action",     "command",        "listen_port",    "redis.host",
        "redis.port", "redis.post", "redis.username", "redis.password", "redis.database"};
    if (std::find(kKnown.begin(), kKnown.end(), key) == kKnown.end()) {
      notes.push_back("unknown setting '" + key + "': not converted");
    }
  }

  out += "# saslguard configuration converted from the Abusix AUTH policy daemon's " +
         std::string(source) +
         "\n# by `saslguard import-config --from abusix-auth-ppd`. Check it with\n"
         "# `saslguard check-config --config FILE`; see docs/detectors/reputation.md.\n";

  // [server]: Abusix listened on every interface although Postfix is told to use loopback.
  auto port = get("listen_port");
  if (port.empty()) port = "9998";
  if (allDigits(port)) {
    out += "\n[server]\n# the Abusix daemon listened on all interfaces; saslguard on loopback\n";
    out += "listen = [" + tomlString("127.0.0.1:" + port) + "]\n";
    notes.push_back("listening on 127.0.0.1:" + port +
                    " only (the Abusix daemon listened on every interface)");
  } else {
    notes.push_back("listen_port '" + port + "' is not a number: server.listen keeps the default");
  }

  // Reply per action; "log" (or none, or an unknown value) marks and logs only.
  const auto action = toLowerAscii(get("action"));
  std::string reputation_action = "LOG";
  if (action == "reject") {
    reputation_action = "REJECT";
  } else if (action == "hold") {
    reputation_action = "HOLD";
  } else if (!action.empty() && action != "log") {
    notes.push_back("action '" + get("action") + "' is unknown (Abusix then logged only): LOG");
  } else if (action.empty()) {
    notes.push_back("no action: LOG (mark and log only, the Abusix default documented)");
  }
  if (reputation_action != "LOG") {
    out += "\n[registry]\n# accounts already marked get the same answer, as in the Abusix cache\n";
    out += "action = " + tomlString(reputation_action) + "\n";
  }

  out += "\n[detectors.reputation]\nenabled = true\npreset = \"abusix\"\n";
  out += "action = " + tomlString(reputation_action) + "\n";
  const auto key = get("apikey");
  if (key.empty()) {
    out += "# api_key_file = \"/etc/saslguard/abusix.key\"\n";
    notes.push_back("no apikey: set detectors.reputation.api_key or api_key_file");
  } else {
    out += "# better kept in a file of its own: api_key_file = \"/etc/saslguard/abusix.key\"\n";
    out += "api_key = " + tomlString(key) + "\n";
  }
  out += "# as the Abusix daemon: refuse to start when the test point is not listed\n";
  out += "self_test = \"fail\"\n";

  // The hook: never through a shell now; a command line with arguments becomes argv.
  if (const auto command = std::string(trim(get("command"))); !command.empty()) {
    std::vector<std::string> argv;
    for (std::size_t i = 0; i < command.size();) {
      const auto start = command.find_first_not_of(" \t", i);
      if (start == std::string::npos) break;
      const auto stop = command.find_first_of(" \t", start);
      argv.push_back(command.substr(start, stop - start));
      i = stop == std::string::npos ? command.size() : stop;
    }
    if (!argv[0].starts_with('/')) {
      auto resolved = std::string(directory);
      if (!resolved.empty() && !resolved.ends_with('/')) resolved += '/';
      auto relative = std::string_view(argv[0]);
      if (relative.starts_with("./")) relative.remove_prefix(2);
      argv[0] = resolved + std::string(relative);
      notes.push_back("command: the relative path became " + argv[0] + "; check it");
    }
    if (command.find_first_of("|&;<>$`\"'*?") != std::string::npos) {
      notes.push_back(
          "command: shell syntax is not interpreted (hooks run without a shell): "
          "put it in a script");
    }
    out += "\n[notify]\n# run on each new mark with the request's attributes in its environment\n";
    out += "# (plus PATH and SASLGUARD_*), never through a shell\n";
    out += "hook_command = " + tomlList(argv) + "\n";
  }

  // Redis held the compromised accounts; the embedded store keeps them now.
  if (!get("redis.host").empty() || !get("redis.port").empty() || !get("redis.post").empty() ||
      !get("redis.database").empty()) {
    const auto host = get("redis.host").empty() ? std::string("127.0.0.1") : get("redis.host");
    auto redis_port = get("redis.port");
    if (redis_port.empty()) redis_port = get("redis.post");
    if (redis_port.empty()) redis_port = "6379";
    out +=
        "\n# The Abusix daemon kept the compromised accounts in the Redis set compromised_accts.\n"
        "# saslguard keeps them in its state store. Carry them over once:\n"
        "#   redis-cli -h " +
        host + " -p " + redis_port +
        " SMEMBERS compromised_accts |\n"
        "#     xargs -I{} saslguard accounts block {} --reason \"imported from Abusix\"\n";
    notes.push_back(
        "[redis]: carry the compromised_accts members over with the command written as a "
        "comment; the password is not copied");
  }
  return result;
}

namespace {

// geoip-policyd's flags by long name; short flags and environment names map onto these.
const std::map<std::string, std::string, std::less<>>& geoipShortFlags() {
  static const std::map<std::string, std::string, std::less<>> kShort{
      {"a", "server-address"}, {"p", "server-port"}, {"A", "redis-address"},
      {"P", "redis-port"},     {"g", "geoip-path"},  {"c", "custom-settings-path"},
      {"v", "verbose"}};
  return kShort;
}

bool geoipBooleanFlag(std::string_view name) {
  static const std::vector<std::string_view> kBooleans{
      "sasl-username",        "block-permanent",    "force-user-known", "http-use-basic-auth",
      "http-use-ssl",         "use-ldap",           "ldap-starttls",    "ldap-skip-tls-verify",
      "ldap-tls-skip-verify", "ldap-sasl-external", "run-actions",      "run-action-operator",
      "mail-ssl-on-connect",  "log-json",           "use-cdb",          "verbose"};
  return std::find(kBooleans.begin(), kBooleans.end(), name) != kBooleans.end();
}

// GEOIPPOLICYD_MAX_IPS -> max-ips, with the exceptions geoip-policyd's code makes.
std::string geoipFlagOfEnv(std::string_view variable) {
  static const std::map<std::string, std::string, std::less<>> kExceptions{
      {"USE_SASL_USERNAME", "sasl-username"},
      {"IGNORE_NETWORKS", "ignore-network"},
      {"LDAP_SERVER_URIS", "ldap-server-uri"},
      {"VERBOSE_LEVEL", "verbose"}};
  if (const auto it = kExceptions.find(variable); it != kExceptions.end()) return it->second;
  auto flag = toLowerAscii(variable);
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

// Shell-like words: blanks separate, single and double quotes group, a backslash-newline joins.
std::vector<std::string> shellWords(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else {
        word += c;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < text.size() && text[i + 1] == '\n') {
      ++i;
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

}  // namespace

ImportResult importGeoipPolicyd(std::string_view text, std::string_view source) {
  ImportResult result;
  auto& notes = result.notes;
  // Every value given, by long flag name; repeated flags accumulate.
  std::map<std::string, std::vector<std::string>> flags;
  std::map<std::string, std::vector<std::string>> environment;
  std::string rest;  // lines that are not GEOIPPOLICYD_* assignments: the command line
  for (std::size_t start = 0; start < text.size();) {
    const auto end = std::min(text.find('\n', start), text.size());
    auto line = trim(text.substr(start, end - start));
    start = end + 1;
    if (line.starts_with("export ")) line = trim(line.substr(7));
    if (line.starts_with("GEOIPPOLICYD_") && line.find('=') != std::string_view::npos) {
      const auto equals = line.find('=');
      const auto name = line.substr(13, equals - 13);
      auto words = shellWords(line.substr(equals + 1));
      std::string value;
      for (const auto& w : words) value += (value.empty() ? "" : " ") + w;
      if (value.empty()) continue;  // empty: geoip-policyd keeps the flag
      // Lists in the environment are separated by blanks (LDAP URIs by commas).
      auto& values = environment[geoipFlagOfEnv(name)];
      if (name == "LDAP_SERVER_URIS") std::replace(value.begin(), value.end(), ',', ' ');
      for (auto& item : shellWords(value)) values.push_back(std::move(item));
    } else if (!line.starts_with('#')) {
      rest += std::string(line) + "\n";
    }
  }
  const auto words = shellWords(rest);
  for (std::size_t i = 0; i < words.size(); ++i) {
    std::string_view word = words[i];
    std::string name;
    if (word.starts_with("--")) {
      name = std::string(word.substr(2));
    } else if (word.starts_with('-') && word.size() > 1) {
      const auto it = geoipShortFlags().find(word.substr(1, 1));
      if (it == geoipShortFlags().end()) {
        notes.push_back("unknown flag " + std::string(word) + ": not converted");
        continue;
      }
      name = it->second;
      if (word.size() > 2 && word.substr(1).find_first_not_of('v') == std::string_view::npos) {
        flags["verbose"].push_back(std::to_string(word.size() - 1));  // -vv
        continue;
      }
    } else {
      continue;  // the program, "server", and values already taken
    }
    std::string value;
    if (const auto equals = name.find('='); equals != std::string::npos) {
      value = name.substr(equals + 1);
      name.resize(equals);
    } else if (geoipBooleanFlag(name)) {
      value = "true";
    } else if (i + 1 < words.size()) {
      value = words[++i];
    }
    flags[name].push_back(value);
  }
  for (auto& [name, values] : environment) flags[name] = values;  // the environment wins

  const auto get = [&](const std::string& name) {
    const auto it = flags.find(name);
    return it == flags.end() || it->second.empty() ? std::string() : it->second.back();
  };
  const auto all = [&](const std::string& name) {
    const auto it = flags.find(name);
    return it == flags.end() ? std::vector<std::string>() : it->second;
  };
  const auto enabled = [&](const std::string& name) {
    const auto value = toLowerAscii(get(name));
    return value == "true" || value == "1" || value == "t" || value == "yes";
  };
  std::vector<std::string> used;
  const auto use = [&](std::initializer_list<const char*> names) {
    for (const auto* n : names) used.emplace_back(n);
  };

  auto& out = result.toml;
  out += "# saslguard configuration converted from geoip-policyd's options in " +
         std::string(source) +
         "\n# by `saslguard import-config --from geoip-policyd`. Check it with\n"
         "# `saslguard check-config --config FILE`; see docs/detectors/geo.md.\n";

  // [server]
  auto address = get("server-address");
  auto port = get("server-port");
  use({"server-address", "server-port"});
  if (address.empty()) address = "127.0.0.1";
  if (port.empty()) port = "4646";
  const bool v6 = address.find(':') != std::string::npos;
  out += "\n[server]\nlisten = [" + tomlString((v6 ? "[" + address + "]" : address) + ":" + port) +
         "]\n";

  // [log]
  use({"verbose", "log-json"});
  if (enabled("log-json")) out += "\n[log]\nsink = \"json\"\n";

  // [identity]: geoip-policyd counts per sender unless told to use the SASL login.
  use({"sasl-username"});
  out += "\n[identity]\n";
  if (enabled("sasl-username")) {
    out += "source = \"sasl_username\"\n";
  } else {
    out += "# geoip-policyd counted per envelope sender (no --sasl-username)\n";
    out += "source = \"sender\"\nunauthenticated = \"evaluate\"\n";
    notes.push_back(
        "identity: per envelope sender, as geoip-policyd without --sasl-username; bounces "
        "(null sender) are answered DUNNO, not DEFER");
  }

  // [ldap]
  use({"use-ldap", "ldap-server-uri", "ldap-basedn", "ldap-binddn", "ldap-bindpw", "ldap-filter",
       "ldap-result-attribute", "ldap-starttls", "ldap-skip-tls-verify", "ldap-tls-skip-verify",
       "ldap-tls-cafile", "ldap-tls-client-cert", "ldap-tls-client-key", "ldap-sasl-external",
       "ldap-scope", "ldap-pool-size", "ldap-idle-pool-size"});
  if (enabled("use-ldap")) {
    out += "\n[ldap]\nenabled = true\n";
    auto uris = all("ldap-server-uri");
    if (uris.empty()) uris = {"ldap://127.0.0.1:389/"};
    out += "uris = " + tomlList(uris) + "\n";
    out += "base_dn = " + tomlString(get("ldap-basedn")) + "\n";
    if (enabled("ldap-sasl-external")) {
      out += "bind_method = \"external\"\n";
    } else if (!get("ldap-binddn").empty()) {
      out += "bind_dn = " + tomlString(get("ldap-binddn")) + "\n";
      out += "# bind_password_file = \"/etc/saslguard/ldap.password\"\n";
    }
    if (!get("ldap-bindpw").empty()) {
      notes.push_back(
          "ldap: the bind password is not copied; put it in a file and set "
          "ldap.bind_password_file");
    }
    out += "filter = " +
           tomlString(get("ldap-filter").empty() ? "(&(objectClass=*)(mailAlias=%s))"
                                                 : get("ldap-filter")) +
           "\n";
    out += "result_attribute = " +
           tomlString(get("ldap-result-attribute").empty() ? "mailAccount"
                                                           : get("ldap-result-attribute")) +
           "\n";
    if (!get("ldap-scope").empty()) out += "scope = " + tomlString(get("ldap-scope")) + "\n";
    if (enabled("ldap-starttls")) out += "starttls = true\n";
    if (enabled("ldap-skip-tls-verify") || enabled("ldap-tls-skip-verify")) {
      out += "tls_skip_verify = true\n";
    }
    if (!get("ldap-tls-cafile").empty())
      out += "ca_file = " + tomlString(get("ldap-tls-cafile")) + "\n";
    if (!get("ldap-tls-client-cert").empty()) {
      out += "cert_file = " + tomlString(get("ldap-tls-client-cert")) + "\n";
    }
    if (!get("ldap-tls-client-key").empty()) {
      out += "key_file = " + tomlString(get("ldap-tls-client-key")) + "\n";
    }
    if (allDigits(get("ldap-pool-size"))) out += "pool_size = " + get("ldap-pool-size") + "\n";
    out +=
        "# geoip-policyd used the mapping only to decide whether a user is known; saslguard\n"
        "# counts, blocks and unblocks under the mapped account\n";
  }

  // [detectors.geo]
  use({"geoip-path", "max-countries", "max-ips", "home-countries", "max-home-countries",
       "max-home-ips", "block-permanent", "custom-settings-path", "ignore-network", "redis-ttl"});
  out += "\n[detectors.geo]\nenabled = true\n";
  out += "database = " +
         tomlString(get("geoip-path").empty() ? "/usr/share/GeoIP/GeoLite2-City.mmdb"
                                              : get("geoip-path")) +
         "\n";
  for (const auto& [flag, key] : std::vector<std::pair<std::string, std::string>>{
           {"max-countries", "max_countries"},
           {"max-ips", "max_ips"},
           {"max-home-countries", "max_home_countries"},
           {"max-home-ips", "max_home_ips"},
           {"redis-ttl", "ttl_s"}}) {
    const auto value = get(flag);
    if (value.empty()) continue;
    if (allDigits(value) && value.size() <= 9) {
      out += key + " = " + std::to_string(std::stoll(value)) + "\n";
    } else {
      notes.push_back(flag + " '" + value + "' is not a number: not converted");
    }
  }
  if (const auto homes = all("home-countries"); !homes.empty()) {
    std::vector<std::string> codes;
    for (const auto& entry : homes) {
      for (auto& code : shellWords(entry)) codes.push_back(toUpperAscii(code));
    }
    out += "home_countries = " + tomlList(codes) + "\n";
  }
  if (const auto networks = all("ignore-network"); !networks.empty()) {
    std::vector<std::string> list;
    for (const auto& entry : networks) {
      for (auto& network : shellWords(entry)) list.push_back(network);
    }
    out += "ignore_networks = " + tomlList(list) + "\n";
    notes.push_back(
        "ignore-network: those clients are answered DUNNO (geoip-policyd answered INFO)");
  }
  if (enabled("block-permanent")) out += "block_permanent = true\n";
  if (!get("custom-settings-path").empty()) {
    out += "custom_settings_file = " + tomlString(get("custom-settings-path")) + "\n";
  }
  out += "# geoip-policyd's reply: action=REJECT Policy violation. Please contact your support\n";

  // [notify]: the operator action, once per new mark.
  use({"run-actions", "run-action-operator", "operator-to", "operator-from", "operator-subject",
       "operator-message-ct", "operator-message-path", "mail-server-address", "mail-server-port",
       "mail-port", "mail-helo", "mail-username", "mail-password", "mail-ssl-on-connect",
       "force-user-known"});
  if (enabled("run-actions") && enabled("run-action-operator")) {
    auto mail_port = get("mail-server-port");
    if (mail_port.empty()) mail_port = get("mail-port");
    if (mail_port.empty()) mail_port = "587";
    const auto scheme = enabled("mail-ssl-on-connect") ? "smtps://" : "smtp://";
    out += "\n[notify]\n";
    out += "mail_url = " + tomlString(scheme + get("mail-server-address") + ":" + mail_port) + "\n";
    out += "mail_from = " + tomlString(get("operator-from")) + "\n";
    out += "mail_to = " + tomlList(all("operator-to")) + "\n";
    out += "mail_subject = " +
           tomlString(get("operator-subject").empty()
                          ? "[geoip-policyd] An e-mail account was compromised"
                          : get("operator-subject")) +
           "\n";
    if (!get("mail-username").empty()) {
      out += "mail_username = " + tomlString(get("mail-username")) + "\n";
      out += "# mail_password_file = \"/etc/saslguard/smtp.password\"\n";
    }
    if (!get("mail-password").empty()) {
      notes.push_back("mail: the password is not copied; set notify.mail_password_file");
    }
    if (!get("operator-message-path").empty()) {
      out += "# its %s becomes {account}: copy " + get("operator-message-path") +
             " and replace %s\n# mail_template_file = \"/etc/saslguard/operator-mail.txt\"\n";
      notes.push_back(
          "operator-message-path: replace %s with {account} in a copy and set "
          "notify.mail_template_file");
    }
    notes.push_back(
        "operator e-mail: sent once per new compromise mark (set block_permanent), never "
        "delaying a reply");
  }

  // [admin]: geoip-policyd always served its REST API; its endpoints keep working.
  use({"http-address", "http-port", "http-use-basic-auth", "http-basic-auth-username",
       "http-basic-auth-password", "http-use-ssl", "http-tls-cert", "http-tls-key"});
  {
    auto address = get("http-address").empty() ? std::string("127.0.0.1") : get("http-address");
    const auto port = get("http-port").empty() ? std::string("8080") : get("http-port");
    // GEOIPPOLICYD_HTTP_ADDRESS is documented as "127.0.0.1:8080" in places: take its host.
    if (const auto colon = address.rfind(':');
        colon != std::string::npos && address.find(':') == colon) {
      address.resize(colon);
    }
    if (address.find(':') != std::string::npos && address.front() != '[') {
      address = "[" + address + "]";
    }
    out += "\n[admin]\nenabled = true\nlisten = " + tomlString(address + ":" + port) + "\n";
    if (enabled("http-use-basic-auth")) {
      out += "basic_user = " + tomlString(get("http-basic-auth-username")) + "\n";
      out += "basic_password_file = \"/etc/saslguard/admin.password\"\n";
      notes.push_back(
          "http-basic-auth-password: not copied; write it to /etc/saslguard/admin.password "
          "(mode 0600)");
    }
    if (enabled("http-use-ssl")) {
      out += "tls_cert_file = " +
             tomlString(get("http-tls-cert").empty() ? "/localhost.pem" : get("http-tls-cert")) +
             "\n";
      out += "tls_key_file = " +
             tomlString(get("http-tls-key").empty() ? "/localhost-key.pem" : get("http-tls-key")) +
             "\n";
    }
    notes.push_back(
        "http: the REST endpoints answer as before; changes through /update, /modify and "
        "DELETE /remove are written to custom_settings_file, and POST /query only looks "
        "(admin.query_records = true records like geoip-policyd did)");
  }

  // What saslguard does otherwise, or not yet.
  for (const auto& [name, values] : flags) {
    if (std::find(used.begin(), used.end(), name) != used.end()) continue;
    if (name.starts_with("redis-")) {
      notes.push_back("redis: " + name + " not converted; the state lives in saslguard's store");
    } else if (name == "use-cdb" || name == "cdb-path") {
      notes.push_back(name + ": CDB is not supported; use LDAP to map identities");
    } else {
      notes.push_back("unknown option " + name + ": not converted");
    }
  }
  return result;
}

Command addImportConfig(CLI::App& app) {
  auto* command = app.add_subcommand(
      "import-config", "convert another policy daemon's configuration to saslguard TOML");
  auto from = std::make_shared<std::string>();
  auto input = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  command->add_option("--from", *from, "the other daemon's format")
      ->required()
      ->check(CLI::IsMember({"uvsq-policyd", "abusix-auth-ppd", "geoip-policyd"}));
  command->add_option("file", *input, "its configuration file (policyd.cfg, abusix_auth_ppd.ini)")
      ->required();
  command->add_option("-o,--output", *output, "write the TOML here instead of stdout");
  return [from, input, output] {
    std::ifstream in(*input, std::ios::binary);
    if (!in) {
      std::cerr << "import-config: cannot read " << *input << "\n";
      return 1;
    }
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto directory = std::filesystem::absolute(*input).parent_path().string();
    const auto result = *from == "abusix-auth-ppd" ? importAbusixAuthPpd(text, *input, directory)
                        : *from == "geoip-policyd" ? importGeoipPolicyd(text, *input)
                                                   : importUvsqPolicyd(text, *input);
    for (const auto& note : result.notes) std::cerr << "import-config: " << note << "\n";
    if (output->empty()) {
      std::cout << result.toml;
      return 0;
    }
    std::ofstream out(*output, std::ios::binary | std::ios::trunc);
    out << result.toml;
    out.close();
    if (!out) {
      std::cerr << "import-config: cannot write " << *output << "\n";
      return 1;
    }
    return 0;
  };
}

}  // namespace saslguard::cli
