// hold_queue.hpp — one account's messages in the local Postfix's hold queue: listed (postqueue -j,
// and postcat -e per message for its SASL login), released (postsuper -H, then postqueue -i) or
// purged (postsuper -d, hold queue only). Postfix's programs run with argv, never through a shell.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace saslguard::notify {

// Where Postfix is and how long its programs may take ([postfix] in the configuration).
struct PostfixCommandOptions {
  std::string config_directory = "/etc/postfix";  // -c for every program
  std::string command_directory = "/usr/sbin";    // postqueue, postsuper, postcat
  std::chrono::milliseconds timeout{30000};       // per program run
  std::size_t max_messages = 10000;               // held messages listed or acted on per call
};

// One message as postqueue -j describes it, plus the SASL login from its queue file.
struct QueuedMessage {
  std::string queue_name;  // "hold", "active", "deferred", "incoming", ...
  std::string queue_id;
  std::int64_t arrival_time_s = 0;  // Unix time
  std::int64_t size = 0;            // bytes
  std::string sender;               // "" for a bounce
  std::vector<std::string> recipients;
  std::string sasl_username;  // "" when the client did not authenticate (or not read)
};

// A Postfix queue ID, short (hex) or long (enable_long_queue_ids): letters and digits only, so
// it can never be read as an option or a path. Anything else is refused before postsuper runs.
bool isQueueId(std::string_view text);

// One line of `postqueue -j` (a JSON object). An error names what is missing or malformed.
Result<QueuedMessage> parsePostqueueLine(std::string_view line);

// The SASL login in `postcat -e` output (the envelope's "named_attribute: sasl_username=...");
// nullopt when the envelope has none (the client did not authenticate).
std::optional<std::string> saslUsernameFromPostcat(std::string_view output);

// The total postsuper reports ("Released from hold: 2 messages", "Deleted: 1 message"), for
// `what` "Released from hold" or "Deleted"; nullopt when the line is missing.
std::optional<std::size_t> postsuperCount(std::string_view output, std::string_view what);

// A finished program: its exit status (128 + signal when killed) and stdout and stderr together,
// cut at the byte bound (the rest is read and dropped, so the program never blocks).
struct CommandOutput {
  int exit_status = -1;
  std::string output;
  bool truncated = false;
};

// Runs argv (absolute program path first) with stdin /dev/null, a minimal environment, in its own
// process group; kills the group at the timeout, which is an error. Never uses a shell.
Result<CommandOutput> runCommand(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout, std::size_t max_output_bytes);

// Which account a held message belongs to: its SASL login (or its sender, with identity.source =
// sender), put in the daemon's normal form.
struct AccountMatcher {
  bool use_sender = false;
  std::function<std::string(std::string_view)> normalise;
};

struct HeldMessages {
  std::string account;
  std::vector<QueuedMessage> messages;
  bool truncated = false;  // more held messages than max_messages were looked at
};

struct HeldAction {
  std::string account;
  std::string action;  // "release" | "purge"
  bool dry_run = false;
  std::vector<QueuedMessage> messages;  // the account's held messages acted on
  std::size_t done = 0;                 // what postsuper reports (0 on a dry run)
  bool truncated = false;
};

class HoldQueue {
 public:
  HoldQueue(PostfixCommandOptions options, AccountMatcher matcher);

  // The account's messages in the hold queue, oldest first.
  Result<HeldMessages> held(const std::string& account) const;
  // postsuper -H for each of them, then postqueue -i so each is delivered now rather than at the
  // next deferred-queue run. `who` goes into the audit log line.
  Result<HeldAction> release(const std::string& account, bool dry_run,
                             const std::string& who) const;
  // postsuper -d for each of them, in the hold queue only (a message released meanwhile stays).
  Result<HeldAction> purge(const std::string& account, bool dry_run, const std::string& who) const;

 private:
  std::string program(std::string_view name) const;
  Result<HeldAction> act(const std::string& action, const std::string& account, bool dry_run,
                         const std::string& who) const;

  PostfixCommandOptions options_;
  AccountMatcher matcher_;
};

// The JSON the CLI (--json) and the admin API answer.
boost::json::object heldToJson(const HeldMessages& held);
boost::json::object actionToJson(const HeldAction& action);
// "2026-11-23T14:32:54Z"
std::string isoTime(std::int64_t unix_seconds);

}  // namespace saslguard::notify
