// config_commands.cpp — `serve`, `check-config`, `config-docs` and `version`: the subcommands that
// take the configuration flags.
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "config/loader.hpp"
#include "engine/detectors/detectors.hpp"
#include "engine/enrichers.hpp"
#include "server/daemon.hpp"

namespace saslguard::cli {

Command addServe(CLI::App& app) {
  auto* serve = app.add_subcommand("serve", "run the policy server (the daemon)");
  auto request = std::make_shared<config::LoadRequest>();
  config::addFlags(*serve, *request);
  return [request] {
    request->environment = config::currentEnvironment();
    return server::runDaemon(*request);
  };
}

Command addCheckConfig(CLI::App& app) {
  auto* check = app.add_subcommand(
      "check-config",
      "validate the configuration and print the effective settings (secrets masked)");
  auto request = std::make_shared<config::LoadRequest>();
  config::addFlags(*check, *request);
  auto quiet = std::make_shared<bool>(false);
  check->add_flag("-q,--quiet", *quiet, "print nothing when the configuration is valid");
  return [request, quiet] {
    request->environment = config::currentEnvironment();
    auto settings = config::load(*request);
    if (!settings) {
      std::cerr << settings.error().text() << "\n";
      return 1;
    }
    // What only the detectors and the notifier check (files they read, zones, keys), as the
    // daemon would at start; no network is used.
    if (auto detectors = engine::buildDetectors(*settings); !detectors) {
      std::cerr << detectors.error().message << "\n";
      return 1;
    }
    if (auto notifier = engine::makeNotifier(settings->notify); !notifier) {
      std::cerr << notifier.error().message << "\n";
      return 1;
    } else {
      (*notifier)->stop(std::chrono::milliseconds(0));
    }
    if (!*quiet) {
      std::cout << config::effectiveToml(*settings);
    }
    return 0;
  };
}

Command addConfigDocs(CLI::App& app) {
  auto* docs = app.add_subcommand(
      "config-docs", "print docs/configuration.md (or, with --sample, the sample file)");
  auto sample = std::make_shared<bool>(false);
  docs->add_flag("--sample", *sample, "print etc/saslguard.toml instead");
  return [sample] {
    std::cout << (*sample ? config::sampleToml() : config::markdownReference());
    return 0;
  };
}

Command addVersion(CLI::App& app) {
  app.add_subcommand("version", "print the version");
  return [] {
    std::cout << "saslguard " << SASLGUARD_VERSION << "\n";
    return 0;
  };
}

}  // namespace saslguard::cli
