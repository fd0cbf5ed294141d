// child_process.hpp — what every test server helper (rbldnsd, slapd, smtp-sink) does with its
// process: start it with stdout and stderr appended to a log file, stop it by the PID it saved
// (SIGTERM, then SIGKILL after a grace; never by name), and find a free loopback port.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace saslguard::testing {

// Starts `argv` (argv[0] the absolute path of the program) with stdin /dev/null and stdout and
// stderr appended to `log`. Returns the PID, or -1 when it cannot start (the reason in the log).
pid_t spawnLogged(std::vector<std::string> argv, const std::filesystem::path& log);

// Sends SIGTERM (and SIGCONT, in case it is stopped), waits up to `grace`, then SIGKILL; always
// reaps it. Sets `pid` to -1; does nothing for a PID <= 0.
void stopChild(pid_t& pid, std::chrono::milliseconds grace);

// A loopback port nobody uses right now (bound to port 0, read back, closed again): the caller
// retries if another process takes it first. `type` SOCK_STREAM (TCP) or SOCK_DGRAM (UDP).
unsigned short freeLoopbackPort(int type = SOCK_STREAM);
// A TCP connect to 127.0.0.1:port succeeds (a server is listening there).
bool loopbackAccepts(unsigned short port);

}  // namespace saslguard::testing
