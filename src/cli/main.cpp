// main.cpp — the saslguard binary: `saslguard serve`, `check-config`, `accounts`, `query`,
// `migrate`, ... Every subcommand lives in its own file in src/cli/.
#include <iostream>
#include <vector>

#include "cli/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "saslguard — detects and contains compromised authenticated mail accounts "
      "(Postfix policy server)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", SASLGUARD_VERSION);
  std::vector<std::pair<CLI::App*, saslguard::cli::Command>> commands;
  const auto add = [&](saslguard::cli::Command command) {
    const auto all = app.get_subcommands([](CLI::App*) { return true; });
    commands.emplace_back(all.back(), std::move(command));
  };
  add(saslguard::cli::addServe(app));
  add(saslguard::cli::addCheckConfig(app));
  add(saslguard::cli::addConfigDocs(app));
  add(saslguard::cli::addVersion(app));
  add(saslguard::cli::addAccounts(app));
  add(saslguard::cli::addQuery(app));
  add(saslguard::cli::addStats(app));
  add(saslguard::cli::addReport(app));
  add(saslguard::cli::addImportConfig(app));
  add(saslguard::cli::addMigrate(app));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (auto& [subcommand, command] : commands) {
    if (subcommand->parsed()) return command();
  }
  std::cerr << app.help();
  return 2;
}
