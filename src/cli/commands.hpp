// commands.hpp — the subcommands of the saslguard binary, each registered on the CLI11 app by
// one function that also holds its options; main.cpp only wires them together.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <optional>

namespace saslguard::cli {

// Each returns the action to run when its subcommand was chosen; the int is the exit code.
using Command = std::function<int()>;

Command addServe(CLI::App& app);
Command addCheckConfig(CLI::App& app);
Command addConfigDocs(CLI::App& app);
Command addVersion(CLI::App& app);
Command addAccounts(CLI::App& app);
Command addQuery(CLI::App& app);
Command addStats(CLI::App& app);
Command addReport(CLI::App& app);
Command addImportConfig(CLI::App& app);
Command addMigrate(CLI::App& app);

// `accounts held|release|purge` (hold_queue.cpp): the returned action runs the verb that was
// chosen and returns its exit code, or nullopt when another `accounts` verb was chosen.
std::function<std::optional<int>()> addHoldQueueVerbs(CLI::App& accounts);

}  // namespace saslguard::cli
