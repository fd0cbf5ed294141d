// import_config.cpp — see import_config.hpp. UVSQ policyd's reader splits each line at the first
// `=` after trimming spaces, CR and LF, ignores lines without `=`, has no comment syntax and drops
// a last line without newline (a bug this reader does not copy).
#include "cli/import_config.hpp"

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

Command addImportConfig(CLI::App& app) {
  auto* command = app.add_subcommand(
      "import-config", "convert another policy daemon's configuration to saslguard TOML");
  auto from = std::make_shared<std::string>();
  auto input = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  command->add_option("--from", *from, "the other daemon's format")
      ->required()
      ->check(CLI::IsMember({"uvsq-policyd"}));
  command->add_option("file", *input, "its configuration file (policyd.cfg)")->required();
  command->add_option("-o,--output", *output, "write the TOML here instead of stdout");
  return [from, input, output] {
    std::ifstream in(*input, std::ios::binary);
    if (!in) {
      std::cerr << "import-config: cannot read " << *input << "\n";
      return 1;
    }
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto result = importUvsqPolicyd(text, *input);
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
