// daemon.hpp — `saslguard serve`: configuration, listeners, privileges, state, pipeline, worker
// threads, control socket, signals (SIGHUP reload, SIGTERM/SIGINT graceful stop) and systemd
// notifications, in the order they must happen.
#pragma once

#include "config/loader.hpp"

namespace saslguard::server {

// Exit codes follow sysexits: 0 stopped cleanly, 1 runtime failure, 78 configuration error.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitConfig = 78;

int runDaemon(const config::LoadRequest& request);

}  // namespace saslguard::server
