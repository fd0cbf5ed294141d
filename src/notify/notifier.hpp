// notifier.hpp — what happens off the request path when an account is newly marked compromised:
// the operator's hook command (posix_spawn, clean environment, never a shell) and an e-mail to
// the operator (libcurl SMTP). Both queue, are bounded, retry or time out, and never block a reply.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "common/result.hpp"

namespace saslguard::notify {

// One new compromise mark, as the hook and the e-mail see it.
struct Notice {
  std::string account;
  std::string detector;  // "reputation"
  std::string action;    // "REJECT", "HOLD", "DUNNO" (log only)
  std::string reason;    // one line
  std::string evidence;  // a JSON object
  std::string client_address;
  TimePoint at{};
  // The policy request's attributes in arrival order, as received (attacker-controlled data).
  std::vector<std::pair<std::string, std::string>> attributes;
};

struct HookOptions {
  std::vector<std::string> command;          // argv; empty: no hook. argv[0] an absolute path
  std::chrono::milliseconds timeout{30000};  // then SIGTERM, and SIGKILL 2 s later
  std::size_t max_running = 4;
  std::size_t max_queued = 1000;                      // beyond: dropped, logged, counted
  std::string path = "/usr/local/bin:/usr/bin:/bin";  // PATH given to the command
};

struct MailOptions {
  std::string
      url;  // "smtp://host:587" (STARTTLS when offered/required), "smtps://host:465"; empty: off
  bool require_tls = false;  // refuse to send in clear text
  bool verify_tls = true;
  std::string username;  // AUTH when set
  std::string password;  // never logged
  std::string from;
  std::vector<std::string> to;
  std::string subject_template = "saslguard: {account} marked compromised by {detector}";
  std::string body_template;  // empty: a built-in text; placeholders as in the subject
  std::chrono::milliseconds timeout{20000};  // per attempt
  int max_attempts = 8;                      // with exponential back-off
  std::chrono::milliseconds first_retry{5000};
  std::chrono::milliseconds max_retry{600000};
  std::size_t max_queued = 1000;
};

// Runs hooks and sends mails on threads of its own. submit() never blocks; stop() waits at most
// `grace` for work in progress, then kills hooks still running and drops what is left (counted).
class Notifier {
 public:
  static Result<std::unique_ptr<Notifier>> create(HookOptions hook, MailOptions mail);
  virtual ~Notifier() = default;
  virtual void submit(const Notice& notice) = 0;
  virtual void stop(std::chrono::milliseconds grace) = 0;
  // Work waiting in each queue (the metrics' queue depth gauges).
  virtual std::size_t hooksQueued() = 0;
  virtual std::size_t mailsQueued() = 0;
};

// The text of a template with {account}, {detector}, {action}, {reason}, {evidence},
// {client_address}, {time} (RFC 3339 UTC) and {attr:NAME} replaced; unknown placeholders stay.
// {attr:NAME} is the last attribute of that exact name, or empty when the request had none.
// Values are inserted once, as they are: a "{account}" inside a value is not expanded again.
std::string expandTemplate(std::string_view text, const Notice& notice);

// "2026-11-23T07:52:17Z": what {time} and SASLGUARD_TIME carry.
std::string formatRfc3339(TimePoint at);

}  // namespace saslguard::notify
