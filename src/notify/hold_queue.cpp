// hold_queue.cpp — see hold_queue.hpp. postqueue -j gives the queue without SASL logins, so each
// held message's envelope is read with postcat -e (body never printed); postsuper takes many -H or
// -d options in one run and reports how many it acted on.
#include "notify/hold_queue.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/strings.hpp"
#include "notify/spawn.hpp"

namespace saslguard::notify {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

// postqueue -j for a busy queue: every line of it, whichever queue, is read before filtering.
constexpr std::size_t kMaxQueueListingBytes = 64u << 20;
// postcat -e of one message: the envelope (sasl_username comes before the recipients).
constexpr std::size_t kMaxEnvelopeBytes = 1u << 20;
// postsuper and postqueue -i print a line per message.
constexpr std::size_t kMaxActionOutputBytes = 4u << 20;
// Queue IDs per postsuper run (each one a "-H ID" pair of arguments).
constexpr std::size_t kIdsPerRun = 500;

std::string firstLine(std::string_view text) {
  const auto end = text.find('\n');
  return std::string(text.substr(0, end));
}

std::string describe(const CommandOutput& output) {
  const auto line = firstLine(output.output);
  return "exit status " + std::to_string(output.exit_status) +
         (line.empty() ? std::string() : ": " + quoteForLog(line));
}

}  // namespace

bool isQueueId(std::string_view text) {
  // Short IDs are 6+ upper-case hex digits; long ones 10+ characters of [0-9A-Za-z] with a 'z'.
  if (text.size() < 6 || text.size() > 64) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
  });
}

Result<QueuedMessage> parsePostqueueLine(std::string_view line) {
  boost::system::error_code ec;
  const auto value = json::parse(line, ec);
  if (ec || !value.is_object()) return fail("postqueue -j line is not a JSON object");
  const auto& object = value.as_object();
  QueuedMessage message;
  const auto text = [&](std::string_view name, std::string& out) -> bool {
    const auto* field = object.if_contains(name);
    if (field == nullptr || !field->is_string()) return false;
    out = std::string(field->as_string());
    return true;
  };
  const auto number = [&](std::string_view name, std::int64_t& out) -> bool {
    const auto* field = object.if_contains(name);
    if (field == nullptr || !field->is_number()) return false;
    boost::system::error_code conversion;
    out = field->to_number<std::int64_t>(conversion);
    return !conversion;
  };
  if (!text("queue_name", message.queue_name)) return fail("postqueue -j line without queue_name");
  if (!text("queue_id", message.queue_id)) return fail("postqueue -j line without queue_id");
  if (!isQueueId(message.queue_id)) {
    return fail("postqueue -j line with a malformed queue_id " + quoteForLog(message.queue_id));
  }
  if (!text("sender", message.sender)) return fail("postqueue -j line without sender");
  number("arrival_time", message.arrival_time_s);
  number("message_size", message.size);
  if (const auto* recipients = object.if_contains("recipients");
      recipients != nullptr && recipients->is_array()) {
    for (const auto& recipient : recipients->as_array()) {
      if (!recipient.is_object()) continue;
      const auto* address = recipient.as_object().if_contains("address");
      if (address != nullptr && address->is_string()) {
        message.recipients.emplace_back(address->as_string());
      }
    }
  }
  return message;
}

std::optional<std::string> saslUsernameFromPostcat(std::string_view output) {
  constexpr std::string_view kRecord = "named_attribute: sasl_username=";
  std::size_t at = 0;
  while (at < output.size()) {
    auto end = output.find('\n', at);
    if (end == std::string_view::npos) end = output.size();
    const auto line = output.substr(at, end - at);
    // Only the envelope: a header or body line can never be mistaken for a record.
    if (line.starts_with("*** MESSAGE CONTENTS")) break;
    if (line.starts_with(kRecord)) {
      const auto value = line.substr(kRecord.size());
      if (value.empty()) return std::nullopt;
      return std::string(value);
    }
    at = end + 1;
  }
  return std::nullopt;
}

std::optional<std::size_t> postsuperCount(std::string_view output, std::string_view what) {
  const std::string marker = std::string(what) + ": ";
  const auto at = output.rfind(marker);
  if (at == std::string_view::npos) return std::nullopt;
  std::size_t count = 0;
  bool digits = false;
  for (auto i = at + marker.size(); i < output.size() && output[i] >= '0' && output[i] <= '9';
       ++i) {
    count = count * 10 + static_cast<std::size_t>(output[i] - '0');
    digits = true;
  }
  if (!digits) return std::nullopt;
  return count;
}

Result<CommandOutput> runCommand(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout, std::size_t max_output_bytes) {
  if (argv.empty() || argv.front().empty() || argv.front().front() != '/') {
    return fail("a command needs an absolute program path");
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return fail(std::string("pipe: ") + std::strerror(errno));
  // A fixed environment: Postfix's commands need no more, and the daemon's stays out.
  auto spawned = spawnInOwnGroup(argv, {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"},
                                 pipe_fds[1], pipe_fds[1]);
  ::close(pipe_fds[1]);
  if (!spawned) {
    ::close(pipe_fds[0]);
    return tl::unexpected(spawned.error());
  }
  const pid_t pid = *spawned;

  CommandOutput result;
  const auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  char buffer[65536];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd readable{pipe_fds[0], POLLIN, 0};
    const int ready = ::poll(&readable, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const auto n = ::read(pipe_fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: every writer (the program and its children) is gone
    const auto room = max_output_bytes - std::min(max_output_bytes, result.output.size());
    result.output.append(buffer, std::min(room, static_cast<std::size_t>(n)));
    if (static_cast<std::size_t>(n) > room) result.truncated = true;
  }
  ::close(pipe_fds[0]);
  if (timed_out) ::kill(-pid, SIGKILL);
  int status = 0;
  // EOF came first, so the exit is near; a program that closed its output and kept running is
  // still bounded by the deadline.
  while (true) {
    const pid_t reaped = ::waitpid(pid, &status, timed_out ? 0 : WNOHANG);
    if (reaped == pid) break;
    if (reaped < 0 && errno != EINTR) return fail(argv.front() + ": waitpid failed");
    if (reaped == 0) {
      if (Clock::now() >= deadline) {
        timed_out = true;
        ::kill(-pid, SIGKILL);
      } else {
        ::usleep(1000);
      }
    }
  }
  if (timed_out) {
    return fail(argv.front() + " did not finish within " + std::to_string(timeout.count()) + " ms");
  }
  result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

HoldQueue::HoldQueue(PostfixCommandOptions options, AccountMatcher matcher)
    : options_(std::move(options)), matcher_(std::move(matcher)) {
  if (!matcher_.normalise) matcher_.normalise = [](std::string_view s) { return std::string(s); };
}

std::string HoldQueue::program(std::string_view name) const {
  auto directory = options_.command_directory;
  while (directory.size() > 1 && directory.back() == '/') directory.pop_back();
  return directory + "/" + std::string(name);
}

Result<HeldMessages> HoldQueue::held(const std::string& account) const {
  HeldMessages out;
  out.account = matcher_.normalise(account);
  auto listing = runCommand({program("postqueue"), "-c", options_.config_directory, "-j"},
                            options_.timeout, kMaxQueueListingBytes);
  if (!listing) return tl::unexpected(listing.error());
  if (listing->exit_status != 0) return fail("postqueue -j failed: " + describe(*listing));
  out.truncated = listing->truncated;

  std::size_t looked_at = 0;
  std::string_view text = listing->output;
  while (!text.empty()) {
    const auto end = text.find('\n');
    const auto line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (line.empty() || line.front() != '{') continue;
    // A line cut by the output bound is left out, like the lines after it.
    if (end == std::string_view::npos && listing->truncated) break;
    if (line.find("\"queue_name\": \"hold\"") == std::string_view::npos &&
        line.find("\"queue_name\":\"hold\"") == std::string_view::npos) {
      continue;
    }
    auto message = parsePostqueueLine(line);
    if (!message) return tl::unexpected(message.error());
    if (message->queue_name != "hold") continue;
    if (++looked_at > options_.max_messages) {
      out.truncated = true;
      break;
    }
    if (matcher_.use_sender) {
      if (message->sender.empty() || matcher_.normalise(message->sender) != out.account) continue;
    } else {
      auto envelope = runCommand(
          {program("postcat"), "-c", options_.config_directory, "-e", "-q", message->queue_id},
          options_.timeout, kMaxEnvelopeBytes);
      if (!envelope) return tl::unexpected(envelope.error());
      // Gone since the listing (released, deleted or expired): not held any more.
      if (envelope->exit_status != 0) continue;
      auto login = saslUsernameFromPostcat(envelope->output);
      if (!login || matcher_.normalise(*login) != out.account) continue;
      message->sasl_username = std::move(*login);
    }
    out.messages.push_back(std::move(*message));
  }
  std::stable_sort(out.messages.begin(), out.messages.end(), [](const auto& a, const auto& b) {
    return a.arrival_time_s < b.arrival_time_s;
  });
  return out;
}

Result<HeldAction> HoldQueue::release(const std::string& account, bool dry_run,
                                      const std::string& who) const {
  return act("release", account, dry_run, who);
}

Result<HeldAction> HoldQueue::purge(const std::string& account, bool dry_run,
                                    const std::string& who) const {
  return act("purge", account, dry_run, who);
}

Result<HeldAction> HoldQueue::act(const std::string& action, const std::string& account,
                                  bool dry_run, const std::string& who) const {
  auto listed = held(account);
  if (!listed) return tl::unexpected(listed.error());
  HeldAction out;
  out.account = listed->account;
  out.action = action;
  out.dry_run = dry_run;
  out.truncated = listed->truncated;
  out.messages = std::move(listed->messages);
  const bool release = action == "release";
  if (!dry_run) {
    for (std::size_t first = 0; first < out.messages.size(); first += kIdsPerRun) {
      std::vector<std::string> argv{program("postsuper"), "-c", options_.config_directory};
      const auto last = std::min(out.messages.size(), first + kIdsPerRun);
      for (auto i = first; i < last; ++i) {
        const auto& id = out.messages[i].queue_id;
        if (!isQueueId(id)) return fail("refusing the malformed queue ID " + quoteForLog(id));
        argv.push_back(release ? "-H" : "-d");
        argv.push_back(id);
      }
      if (!release) argv.push_back("hold");  // delete from the hold queue only
      auto ran = runCommand(argv, options_.timeout, kMaxActionOutputBytes);
      if (!ran) return tl::unexpected(ran.error());
      if (ran->exit_status != 0) return fail("postsuper failed: " + describe(*ran));
      out.done +=
          postsuperCount(ran->output, release ? "Released from hold" : "Deleted").value_or(0);
    }
    if (release) {
      // A released message waits in the deferred queue for the next queue run (queue_run_delay,
      // 300 s by default); postqueue -i schedules it now. One ID per run: postqueue takes one.
      for (const auto& message : out.messages) {
        auto scheduled = runCommand(
            {program("postqueue"), "-c", options_.config_directory, "-i", message.queue_id},
            options_.timeout, kMaxActionOutputBytes);
        if (!scheduled || scheduled->exit_status != 0) {
          spdlog::warn("hold queue: postqueue -i {} failed: {}", message.queue_id,
                       scheduled ? describe(*scheduled) : scheduled.error().message);
        }
      }
    }
  }
  std::string ids;
  for (const auto& message : out.messages) ids += (ids.empty() ? "" : ",") + message.queue_id;
  spdlog::info("hold queue: {} by {} account={} dry_run={} matched={} ids={} {}={}{}", action, who,
               quoteForLog(out.account), dry_run, out.messages.size(), quoteForLog(ids),
               release ? "released" : "purged", out.done, out.truncated ? " (truncated)" : "");
  return out;
}

std::string isoTime(std::int64_t unix_seconds) {
  const std::time_t seconds = unix_seconds;
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

namespace {

json::object messageToJson(const QueuedMessage& message) {
  json::array recipients;
  for (const auto& recipient : message.recipients) recipients.emplace_back(recipient);
  return json::object{{"queue_id", message.queue_id},
                      {"arrival_time", isoTime(message.arrival_time_s)},
                      {"arrival_time_s", message.arrival_time_s},
                      {"sender", message.sender},
                      {"recipients", std::move(recipients)},
                      {"size", message.size},
                      {"sasl_username", message.sasl_username}};
}

}  // namespace

json::object heldToJson(const HeldMessages& held) {
  json::array messages;
  for (const auto& message : held.messages) messages.push_back(messageToJson(message));
  return json::object{
      {"account", held.account}, {"messages", std::move(messages)}, {"truncated", held.truncated}};
}

json::object actionToJson(const HeldAction& action) {
  json::array ids;
  for (const auto& message : action.messages) ids.emplace_back(message.queue_id);
  return json::object{{"account", action.account},
                      {"action", action.action},
                      {"dry_run", action.dry_run},
                      {"queue_ids", std::move(ids)},
                      {"matched", action.messages.size()},
                      {action.action == "release" ? "released" : "purged", action.done},
                      {"truncated", action.truncated}};
}

}  // namespace saslguard::notify
