// smtp_sink.hpp — Postfix's smtp-sink on a loopback port for mail tests: each message it accepts
// is dumped to a file of its own, which the test reads back. Started and stopped by its PID.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"

namespace saslguard::testing {

class SmtpSink {
 public:
  static constexpr const char* kProgram = "/usr/sbin/smtp-sink";
  static bool available();
  // A loopback TCP port nobody listens on right now (bound to port 0, then closed again).
  static unsigned short freePort();

  // Starts smtp-sink on 127.0.0.1:`port` (0: a free port) with `extra_arguments` before the
  // address (e.g. {"-f", "RCPT"} to refuse recipients); waits until the port accepts.
  explicit SmtpSink(unsigned short port = 0, std::vector<std::string> extra_arguments = {});
  ~SmtpSink();
  SmtpSink(const SmtpSink&) = delete;
  SmtpSink& operator=(const SmtpSink&) = delete;

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  unsigned short port() const { return port_; }
  std::string url() const { return "smtp://127.0.0.1:" + std::to_string(port_); }
  // What smtp-sink printed (its errors).
  std::string log() const;

  // The dumped messages, oldest file first: smtp-sink's X-* and Received lines, then the message
  // as received (LF line ends, dot-stuffing undone).
  std::vector<std::string> messages() const;
  // Waits until at least `count` messages are dumped; false at the timeout.
  bool waitForMessages(std::size_t count,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

 private:
  TempDir directory_;
  std::filesystem::path dump_directory_;
  pid_t pid_ = -1;
  unsigned short port_ = 0;
};

}  // namespace saslguard::testing
