// postfix.hpp — a throwaway Postfix 3.7 instance for end-to-end tests (environment.md §3): its own
// config directory, queue and maillog under a temporary directory, Dovecot SASL (passwd-file) in
// the foreground, deliveries to a local smtp-sink, a policy server wired at RCPT and end of data.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "support/smtp_sink.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::testing {

// Runs `argv` (absolute program path first; no shell) to completion: exit code (128+signal when
// killed, -1 when it cannot start) and stdout and stderr together.
struct ProgramResult {
  int exit_code = -1;
  std::string output;
};
ProgramResult runCaptured(const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30));

// One SMTP transaction through swaks.
struct Submission {
  std::string from = "alice@e2e.test";  // "" sends a bounce (MAIL FROM:<>)
  std::vector<std::string> to{"someone@remote.test"};
  std::string user;  // non-empty: AUTH PLAIN on the submission port with `password`
  std::string password;
  // On the second listener (127.0.0.0/8 may relay there without AUTH, and may send XCLIENT).
  bool trusted_port = false;
  // Non-empty: on the second listener, XCLIENT ADDR=<address> (and LOGIN=<xclient_login> if set)
  // before the transaction, so saslguard sees that client address and login.
  std::string xclient_address;
  std::string xclient_login;
  std::string subject = "e2e";  // a marker the test finds the delivered copy by
};

struct SmtpOutcome {
  int exit_code = -1;      // swaks': 0 when the message was accepted
  std::string transcript;  // what swaks printed
  bool accepted() const { return exit_code == 0 && !queueId().empty(); }
  std::string queueId() const;  // from "250 2.0.0 Ok: queued as ID"; "" when not queued
  // The first reply line of the server with this status class ('4' or '5'), "" when none.
  std::string firstReply(char status_class) const;
};

struct PostfixAccount {
  std::string login;
  std::string password;
};

class PostfixInstance {
 public:
  static bool available();  // postfix, dovecot, swaks and smtp-sink are installed, we are root

  // Wires `check_policy_service inet:127.0.0.1:<policy_port>` at smtpd_sender_restrictions
  // (evaluated at RCPT) and smtpd_end_of_data_restrictions, without default_action (Postfix
  // answers 451 4.3.5 when the server cannot be reached). Throws std::runtime_error with the
  // logs when something does not start.
  PostfixInstance(unsigned short policy_port, std::vector<PostfixAccount> accounts);
  ~PostfixInstance();
  PostfixInstance(const PostfixInstance&) = delete;
  PostfixInstance& operator=(const PostfixInstance&) = delete;

  unsigned short submissionPort() const { return submission_port_; }
  unsigned short xclientPort() const { return xclient_port_; }
  std::string configDirectory() const { return (dir_ / "conf").string(); }
  const SmtpSink& sink() const { return *sink_; }

  SmtpOutcome submit(const Submission& submission) const;

  // postqueue -j, one JSON object per line.
  std::vector<std::string> queueJson() const;
  // Queue IDs in `queue_name` ("hold", "active", "deferred", "incoming"...).
  std::vector<std::string> queueIds(const std::string& queue_name) const;
  bool waitForQueueIds(const std::string& queue_name, std::size_t count,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  // postsuper -d ALL: a clean queue for the next test.
  void deleteAllMail() const;
  // Delivered copies whose text contains `marker`.
  std::size_t deliveredWith(const std::string& marker) const;
  bool waitForDelivered(const std::string& marker, std::size_t count,
                        std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

  std::string maillog() const;
  std::string dovecotLog() const;
  // The maillog, the Dovecot log and the sink's log, for failure messages.
  std::string logs() const;

 private:
  void writeFiles(unsigned short policy_port, const std::vector<PostfixAccount>& accounts);
  void stop();

  TempDir dir_;
  std::unique_ptr<SmtpSink> sink_;
  unsigned short submission_port_ = 0;
  unsigned short xclient_port_ = 0;
  pid_t dovecot_pid_ = -1;
  pid_t master_pid_ = -1;
  bool started_ = false;
};

}  // namespace saslguard::testing
