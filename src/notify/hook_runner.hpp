// hook_runner.hpp — runs the operator's hook command once per new compromise mark: a bounded
// queue, at most max_running children at once (posix_spawn, own process group, clean
// environment, never a shell), a timeout that kills the group, stderr captured for the log.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/guarded.hpp"
#include "common/result.hpp"
#include "notify/notifier.hpp"

namespace saslguard::notify {

using SteadyClock = std::chrono::steady_clock;

// The environment a hook gets for this notice, as "NAME=value" strings: PATH, the request's
// attributes under sanitised names, then the SASLGUARD_* variables. Nothing is inherited.
std::vector<std::string> hookEnvironment(const Notice& notice, const std::string& path);

// An attribute name as an environment variable name: bytes outside [A-Za-z0-9_] become '_', a
// leading digit gets a '_' in front. Empty when the attribute must be skipped: an empty name, a
// name that would shadow PATH or a SASLGUARD_* variable, or one the loader, libc or a shell
// acts on (LD_*, MALLOC_*, IFS, ENV, BASH_ENV, GCONV_PATH, HOME, ...).
std::string environmentName(std::string_view attribute);

// The first `limit` bytes of a child's stderr, kept for one log line.
inline constexpr std::size_t kStderrLimitBytes = 4096;
// Between SIGTERM at the timeout and SIGKILL to the process group.
inline constexpr std::chrono::seconds kKillGrace{2};

class HookRunner {
 public:
  using Ptr = std::unique_ptr<HookRunner>;
  // Fails, naming the field, when the command is not an executable absolute path or a bound is 0.
  static Result<Ptr> create(HookOptions options);
  ~HookRunner();
  HookRunner(const HookRunner&) = delete;
  HookRunner& operator=(const HookRunner&) = delete;

  // Queues one run; a full queue or a stopping runner drops it (counted). Never waits for a child.
  void submit(const Notice& notice);
  // No new work from now on; queued runs still start until `deadline`, then whatever runs is
  // killed and whatever waits is dropped. join() returns once the runner thread has finished.
  void requestStop(SteadyClock::time_point deadline);
  void join();

  // For tests and the log: runs waiting to start, and children alive.
  std::size_t queued();
  std::size_t running() const { return running_.load(); }

 private:
  struct State {
    std::deque<Notice> queue;
    bool stopping = false;
    SteadyClock::time_point stop_deadline{};
    std::uint64_t drops_not_logged = 0;
  };

  HookRunner(HookOptions options, int wake_fd);
  void wake();
  void run();

  const HookOptions options_;
  const int wake_fd_;  // an eventfd: submit() and requestStop() interrupt the runner's poll()
  Guarded<State> state_;
  std::atomic<std::size_t> running_{0};
  std::thread thread_;
};

}  // namespace saslguard::notify
