// hook_runner.cpp — one thread owns every hook child: it starts queued runs up to max_running,
// poll()s their pidfds and stderr pipes until the nearest deadline, kills late process groups
// (SIGTERM, SIGKILL 2 s later) and reaps every child it started, so none is left a zombie.
#include "notify/hook_runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "common/log.hpp"
#include "common/strings.hpp"
#include "metrics/metrics.hpp"
#include "notify/spawn.hpp"

namespace saslguard::notify {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

bool isNameByte(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

// Postfix cannot send a NUL inside a value, but a value built elsewhere could: execve() would cut
// it there anyway, so cut it here where it is visible.
std::string_view upToNul(std::string_view value) {
  return value.substr(0, value.find('\0'));
}

// A child the runner started and has not reaped yet.
struct Child {
  pid_t pid = -1;
  int pidfd = -1;      // readable once the child has exited; -1 if the kernel has no pidfd
  int stderr_fd = -1;  // our end of its stderr pipe; -1 after EOF
  std::string stderr_text;
  bool stderr_truncated = false;
  std::string account;
  SteadyClock::time_point started{};
  SteadyClock::time_point timeout_at{};
  std::optional<SteadyClock::time_point> kill_at;  // set once SIGTERM has been sent
  bool killed_at_stop = false;
};

std::string describeStatus(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

Result<Child> spawnChild(const HookOptions& options, const Notice& notice) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return fail(std::string("pipe: ") + std::strerror(errno));

  // stdout to /dev/null; stderr read for the log. Its own process group, so a timeout kills the
  // script and whatever it started.
  auto spawned =
      spawnInOwnGroup(options.command, hookEnvironment(notice, options.path), -1, pipe_fds[1]);
  ::close(pipe_fds[1]);
  if (!spawned) {
    ::close(pipe_fds[0]);
    return tl::unexpected(spawned.error());
  }
  Child child;
  child.pid = *spawned;
  child.stderr_fd = pipe_fds[0];
  ::fcntl(child.stderr_fd, F_SETFL, ::fcntl(child.stderr_fd, F_GETFL) | O_NONBLOCK);
  // The child is not reaped before we wait for it, so its PID cannot have been reused here.
  // Through syscall(): glibc 2.36's <sys/pidfd.h> lacks extern "C" and does not link from C++.
  child.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child.pid, 0));
  child.account = notice.account;
  child.started = SteadyClock::now();
  child.timeout_at = child.started + options.timeout;
  return child;
}

// Reads what the child wrote to stderr so far; keeps the first kStderrLimitBytes and drains the
// rest so a chatty hook never blocks on a full pipe. Closes our end at EOF.
void readStderr(Child& child) {
  char buffer[4096];
  while (child.stderr_fd >= 0) {
    const ssize_t n = ::read(child.stderr_fd, buffer, sizeof buffer);
    if (n > 0) {
      const auto room = kStderrLimitBytes - child.stderr_text.size();
      child.stderr_text.append(buffer, std::min<std::size_t>(room, static_cast<std::size_t>(n)));
      if (static_cast<std::size_t>(n) > room) child.stderr_truncated = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    ::close(child.stderr_fd);  // EOF, or an error we cannot do better with
    child.stderr_fd = -1;
  }
}

void signalGroup(const Child& child, int signal_number) {
  // The leader is alive or an unreaped zombie, so the group ID still names its group.
  ::kill(-child.pid, signal_number);
}

// Reaps the child (it has exited, or is about to after SIGKILL) and logs the outcome.
void finishChild(Child& child, const std::string& command) {
  readStderr(child);
  // A hook we timed out may have left background processes in its group; they go too. Done
  // before waitpid(), while the zombie leader still holds the group ID.
  if (child.kill_at) signalGroup(child, SIGKILL);
  int status = 0;
  while (::waitpid(child.pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (child.pidfd >= 0) ::close(child.pidfd);
  if (child.stderr_fd >= 0) ::close(child.stderr_fd);
  child.pidfd = child.stderr_fd = -1;
  child.pid = -1;  // reaped: the runner forgets it

  const auto elapsed_ms = duration_cast<milliseconds>(SteadyClock::now() - child.started).count();
  std::string stderr_note;
  if (!child.stderr_text.empty()) {
    stderr_note = " stderr=" + quoteForLog(child.stderr_text) +
                  (child.stderr_truncated ? " (truncated)" : "");
  }
  if (child.kill_at) {
    // Logged before counted: whoever sees the counter move finds the line in the log.
    spdlog::warn("hook {} for account {} killed after {} ms ({}), {}{}", command,
                 quoteForLog(child.account), elapsed_ms,
                 child.killed_at_stop ? "shutdown" : "timeout", describeStatus(status),
                 stderr_note);
    SASLGUARD_COUNT(hooks_killed_total);
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    // Not thinned like peer warnings: runs are bounded by max_running and the queue, and the
    // operator needs every failed report.
    spdlog::warn("hook {} for account {} failed after {} ms: {}{}", command,
                 quoteForLog(child.account), elapsed_ms, describeStatus(status), stderr_note);
    SASLGUARD_COUNT(hooks_failed_total);
  } else if (!stderr_note.empty()) {
    spdlog::info("hook {} for account {} finished in {} ms:{}", command, quoteForLog(child.account),
                 elapsed_ms, stderr_note);
  } else {
    spdlog::debug("hook {} for account {} finished in {} ms", command, quoteForLog(child.account),
                  elapsed_ms);
  }
}

bool exited(const Child& child) {
  if (child.pidfd >= 0) {
    pollfd probe{child.pidfd, POLLIN, 0};
    return ::poll(&probe, 1, 0) > 0;
  }
  // No pidfd: ask without reaping, so finishChild() still sees the status.
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(child.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == child.pid;
}

}  // namespace

std::string environmentName(std::string_view attribute) {
  attribute = upToNul(attribute);
  if (attribute.empty()) return {};
  std::string name;
  if (attribute.front() >= '0' && attribute.front() <= '9') name.push_back('_');
  for (const char c : attribute) name.push_back(isNameByte(c) ? c : '_');
  if (name == "PATH" || name.rfind("SASLGUARD_", 0) == 0) return {};
  // Postfix only sends lower-case names, but anything that reaches the policy port can send
  // others: none of them may steer the dynamic loader, libc or the shell running the hook.
  static constexpr std::string_view kSteering[] = {
      "IFS",         "ENV",         "BASH_ENV",    "SHELLOPTS",      "BASHOPTS",
      "PS4",         "CDPATH",      "GCONV_PATH",  "LOCPATH",        "NLSPATH",
      "HOSTALIASES", "RES_OPTIONS", "LOCALDOMAIN", "GLIBC_TUNABLES", "TMPDIR",
      "HOME"};
  if (name.rfind("LD_", 0) == 0 || name.rfind("MALLOC_", 0) == 0) return {};
  for (const auto steering : kSteering) {
    if (name == steering) return {};
  }
  return name;
}

std::vector<std::string> hookEnvironment(const Notice& notice, const std::string& path) {
  std::vector<std::string> environment{"PATH=" + std::string(upToNul(path))};
  // A repeated (or equally sanitised) name keeps one entry, with the last value: a second
  // definition of a variable in envp is read differently by different programs.
  std::vector<std::pair<std::string, std::string_view>> attributes;
  for (const auto& [key, value] : notice.attributes) {
    auto name = environmentName(key);
    if (name.empty()) continue;
    auto same = std::find_if(attributes.begin(), attributes.end(),
                             [&](const auto& entry) { return entry.first == name; });
    if (same != attributes.end()) {
      same->second = upToNul(value);
    } else {
      attributes.emplace_back(std::move(name), upToNul(value));
    }
  }
  for (const auto& [name, value] : attributes)
    environment.push_back(name + "=" + std::string(value));
  const std::pair<const char*, const std::string*> ours[] = {
      {"SASLGUARD_ACCOUNT", &notice.account},
      {"SASLGUARD_DETECTOR", &notice.detector},
      {"SASLGUARD_ACTION", &notice.action},
      {"SASLGUARD_REASON", &notice.reason},
      {"SASLGUARD_EVIDENCE", &notice.evidence},
      {"SASLGUARD_CLIENT_ADDRESS", &notice.client_address},
  };
  for (const auto& [name, value] : ours) {
    environment.push_back(std::string(name) + "=" + std::string(upToNul(*value)));
  }
  environment.push_back("SASLGUARD_TIME=" + formatRfc3339(notice.at));
  return environment;
}

Result<HookRunner::Ptr> HookRunner::create(HookOptions options) {
  if (options.command.empty()) return fail("hook command: empty");
  const auto& program = options.command.front();
  if (program.empty() || program.front() != '/') {
    return fail("hook command: " + quoteForLog(program) + " is not an absolute path");
  }
  if (::access(program.c_str(), X_OK) != 0) {
    return fail("hook command: " + program + " is not executable: " + std::strerror(errno));
  }
  if (options.max_running == 0) return fail("hook max_running: must be at least 1");
  if (options.max_queued == 0) return fail("hook max_queued: must be at least 1");
  if (options.timeout <= milliseconds::zero()) return fail("hook timeout: must be positive");
  const int wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) return fail(std::string("hook runner: eventfd: ") + std::strerror(errno));
  return Ptr(new HookRunner(std::move(options), wake_fd));
}

HookRunner::HookRunner(HookOptions options, int wake_fd)
    : options_(std::move(options)), wake_fd_(wake_fd), thread_([this] { run(); }) {}

HookRunner::~HookRunner() {
  requestStop(SteadyClock::now());
  join();
  ::close(wake_fd_);
}

void HookRunner::submit(const Notice& notice) {
  {
    auto state = state_.lock();
    if (!state->stopping && state->queue.size() < options_.max_queued) {
      state->queue.push_back(notice);
      if (state->queue.back().at == TimePoint{}) state->queue.back().at = Clock::now();
    } else {
      SASLGUARD_COUNT(hooks_dropped_total);
      ++state->drops_not_logged;
      if (log::peerWarningAllowed()) {
        spdlog::warn(
            "hook queue {} ({} waiting, {} running): dropped {} run(s), last for account {}",
            state->stopping ? "stopped" : "full", state->queue.size(), running(),
            state->drops_not_logged, quoteForLog(notice.account));
        state->drops_not_logged = 0;
      }
      return;
    }
  }
  wake();
}

void HookRunner::requestStop(SteadyClock::time_point deadline) {
  {
    auto state = state_.lock();
    if (state->stopping) {
      state->stop_deadline = std::min(state->stop_deadline, deadline);
    } else {
      state->stopping = true;
      state->stop_deadline = deadline;
    }
  }
  wake();
}

void HookRunner::join() {
  if (thread_.joinable()) thread_.join();
}

std::size_t HookRunner::queued() {
  return state_.lock()->queue.size();
}

void HookRunner::wake() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto ignored = ::write(wake_fd_, &one, sizeof one);  // full: already awake
}

void HookRunner::run() {
  const std::string command = quoteForLog(options_.command.front());
  std::vector<Child> children;
  bool stopping = false;
  SteadyClock::time_point stop_deadline{};

  while (true) {
    std::vector<Notice> to_start;
    {
      auto state = state_.lock();
      stopping = state->stopping;
      stop_deadline = state->stop_deadline;
      if (stopping && SteadyClock::now() >= stop_deadline) break;
      if (stopping && state->queue.empty() && children.empty()) break;
      while (children.size() + to_start.size() < options_.max_running && !state->queue.empty()) {
        to_start.push_back(std::move(state->queue.front()));
        state->queue.pop_front();
      }
    }
    for (const auto& notice : to_start) {
      auto child = spawnChild(options_, notice);
      if (!child) {
        spdlog::warn("hook for account {} could not start: {}", quoteForLog(notice.account),
                     child.error().message);
        SASLGUARD_COUNT(hooks_failed_total);
        continue;
      }
      SASLGUARD_COUNT(hooks_started_total);
      children.push_back(std::move(*child));
      running_.store(children.size());
    }

    // Wait for the wake-up, a child's exit or output, or the nearest deadline.
    auto now = SteadyClock::now();
    auto next = stopping ? stop_deadline : now + std::chrono::hours(1);
    bool need_tick = false;
    std::vector<pollfd> fds{{wake_fd_, POLLIN, 0}};
    for (const auto& child : children) {
      next = std::min(next, child.kill_at ? *child.kill_at : child.timeout_at);
      if (child.pidfd >= 0) {
        fds.push_back({child.pidfd, POLLIN, 0});
      } else {
        need_tick = true;
      }
      if (child.stderr_fd >= 0) fds.push_back({child.stderr_fd, POLLIN, 0});
    }
    if (need_tick) next = std::min(next, now + milliseconds(100));
    // +1 ms: poll() rounds down, and waking just before a deadline would only spin once more.
    const auto wait_ms =
        std::clamp<std::int64_t>(duration_cast<milliseconds>(next - now).count() + 1, 0, 3600000);
    if (::poll(fds.data(), fds.size(), static_cast<int>(wait_ms)) < 0 && errno != EINTR) {
      fatal(std::string("hook runner: poll: ") + std::strerror(errno));
    }
    if (fds[0].revents != 0) {
      std::uint64_t count = 0;
      [[maybe_unused]] const auto ignored = ::read(wake_fd_, &count, sizeof count);
    }

    now = SteadyClock::now();
    for (auto& child : children) {
      readStderr(child);
      if (exited(child)) {
        finishChild(child, command);
        continue;
      }
      if (!child.kill_at && now >= child.timeout_at) {
        signalGroup(child, SIGTERM);
        child.kill_at = now + kKillGrace;
      } else if (child.kill_at && now >= *child.kill_at) {
        signalGroup(child, SIGKILL);  // reaped when its pidfd says it is gone, a moment later
        *child.kill_at = now + std::chrono::seconds(1);  // and again while it is not
      }
    }
    std::erase_if(children, [](const Child& child) { return child.pid < 0; });
    running_.store(children.size());
  }

  // Out of time: what still runs is killed, what still waits is dropped.
  for (auto& child : children) {
    if (!child.kill_at) child.kill_at = SteadyClock::now();
    child.killed_at_stop = true;
    signalGroup(child, SIGKILL);
    finishChild(child, command);
  }
  children.clear();
  running_.store(0);
  auto state = state_.lock();
  if (!state->queue.empty()) {
    spdlog::warn("hook runner stopped: {} queued run(s) dropped", state->queue.size());
    for (std::size_t i = 0; i < state->queue.size(); ++i) SASLGUARD_COUNT(hooks_dropped_total);
    state->queue.clear();
  }
}

}  // namespace saslguard::notify
