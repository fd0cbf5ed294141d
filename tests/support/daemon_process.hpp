// daemon_process.hpp — starts the built saslguard binary as a child process for black-box tests,
// waits until it says it is ready, and stops it by the PID it saved (SIGKILL if it will not stop).
// Also a small blocking policy client that speaks the protocol over TCP or a unix socket.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace saslguard::testing {

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs the saslguard binary to completion with these arguments (e.g. check-config ...).
RunResult runSaslguard(const std::vector<std::string>& arguments,
                       const std::vector<std::string>& extra_environment = {});

class DaemonProcess {
 public:
  // Starts `saslguard serve ARGS`, logging to `log_path`; waits for the ready line.
  DaemonProcess(std::vector<std::string> serve_arguments, std::filesystem::path log_path,
                std::vector<std::string> extra_environment = {});
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  bool ready() const { return ready_; }
  pid_t pid() const { return pid_; }
  // The port of the first IPv4 address it listens on, from its ready line.
  unsigned short port() const { return port_; }
  // The admin API's port, from its ready line ("admin API on HOST:PORT"); 0 when it has none.
  unsigned short adminPort() const { return admin_port_; }
  std::string log() const;
  // Waits until the log contains `text` (true) or the timeout passes (false).
  bool waitForLog(const std::string& text,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

  void signal(int number) const;
  // Waits for the process to exit and returns its status (exit code, or 128+signal).
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  bool running();

 private:
  pid_t pid_ = -1;
  std::filesystem::path log_path_;
  bool ready_ = false;
  unsigned short port_ = 0;
  unsigned short admin_port_ = 0;
  std::optional<int> status_;
};

// A blocking policy connection (what Postfix's smtpd keeps open).
class PolicyClient {
 public:
  static std::optional<PolicyClient> connectTcp(unsigned short port);
  static std::optional<PolicyClient> connectUnix(const std::string& path);
  PolicyClient(PolicyClient&& other) noexcept;
  ~PolicyClient();

  bool send(const std::string& bytes);
  // Reads one reply ("action=...\n\n"); nullopt on close, error or timeout.
  std::optional<std::string> readReply(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Send one request and read its reply.
  std::optional<std::string> ask(const std::string& request);
  // True when the server has closed the connection (EOF within the timeout).
  bool closedByPeer(std::chrono::milliseconds timeout);

 private:
  explicit PolicyClient(int fd) : fd_(fd) {}
  int fd_ = -1;
  std::string buffer_;
};

// A Postfix 3.7-shaped RCPT request for `account` (empty: unauthenticated).
std::string postfixRequest(const std::string& account, const std::string& client = "192.0.2.10",
                           const std::string& state = "RCPT");

}  // namespace saslguard::testing
