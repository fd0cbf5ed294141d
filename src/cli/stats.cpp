// stats.cpp — `saslguard stats`: the running daemon's counters (requests, replies by action,
// malformed input, registry hits, store figures) through its control socket, one per line.
#include <boost/json.hpp>
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "config/loader.hpp"
#include "server/control.hpp"

namespace saslguard::cli {

Command addStats(CLI::App& app) {
  auto* stats = app.add_subcommand("stats", "print the running daemon's counters");
  auto request = std::make_shared<config::LoadRequest>();
  config::addFlags(*stats, *request);
  return [request] {
    request->environment = config::currentEnvironment();
    auto settings = config::load(*request);
    if (!settings) {
      std::cerr << settings.error().text() << "\n";
      return 78;
    }
    std::string socket = settings->server.control_socket;
    if (socket.empty()) {
      std::cerr << "saslguard: server.control_socket is disabled\n";
      return 1;
    }
    if (socket.front() != '/')
      socket = (std::filesystem::path(settings->state.dir) / socket).string();
    auto answer = server::controlRequest(socket, boost::json::object{{"command", "stats"}});
    if (!answer) {
      std::cerr << "saslguard: " << answer.error().message << "\n";
      return 1;
    }
    for (const auto& [name, value] : answer->at("stats").as_object()) {
      std::cout << std::string(name) << " " << boost::json::serialize(value) << "\n";
    }
    return 0;
  };
}

}  // namespace saslguard::cli
