// crash_test.cpp — kill -9 safety. A child (this test binary re-run with a gtest filter) marks
// accounts and counts in a loop, acknowledging each step on a pipe once the store call returned;
// the parent SIGKILLs it, reopens the store and checks that every acknowledged mark is there and
// that the counter lost at most what the last group-commit intervals could hold.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "store_test_util.hpp"

extern char** environ;

namespace saslguard::store::testing {
namespace {

constexpr const char* kChildDirEnv = "SASLGUARD_STORE_CRASH_CHILD_DIR";
constexpr int kAckFd = 3;
constexpr int kFlushIntervalMs = 100;

CounterOp sent(std::uint64_t amount) { return counter("sent", amount, 86400, 100); }

// Runs only in the child the CrashSafety test starts (DISABLED_ keeps it out of normal runs; the
// environment variable keeps --gtest_also_run_disabled_tests from running it by accident).
TEST(CrashChild, DISABLED_MarkAndCountUntilKilled) {
  const char* dir = std::getenv(kChildDirEnv);
  if (dir == nullptr) GTEST_SKIP() << "started by CrashSafety only";
  EmbeddedStoreOptions o;
  o.dir = dir;
  o.flush_interval_ms = kFlushIntervalMs;
  o.map_size_mb = 256;
  auto store = EmbeddedStore::open(o);
  if (!store) _exit(2);
  for (int i = 0;; ++i) {
    auto counted = (*store)->execute(batch("counter", {sent(1)}), Clock::now());
    if (!counted) _exit(3);
    if (!(*store)->mark("acct-" + std::to_string(i), mark("reputation", "crash test"),
                        Clock::now())) {
      _exit(4);
    }
    char line[64];
    const int size = std::snprintf(line, sizeof line, "%d %llu\n", i,
                                   static_cast<unsigned long long>(counted->counters[0].total));
    if (::write(kAckFd, line, static_cast<std::size_t>(size)) != size) _exit(5);
    ::usleep(1000);
  }
}

struct Ack {
  int index;
  std::uint64_t total;
  std::chrono::steady_clock::time_point received;
};

TEST(CrashSafety, KillNineLosesNoMarkAndAtMostAFewFlushIntervalsOfCounts) {
  using std::chrono::milliseconds;
  using std::chrono::steady_clock;
  saslguard::testing::TempDir dir;

  int raw[2];
  ASSERT_EQ(::pipe(raw), 0);
  // Keep both ends off fd 3 so dup2 in the child really moves the write end there.
  const int read_fd = ::fcntl(raw[0], F_DUPFD_CLOEXEC, 10);
  const int write_fd = ::fcntl(raw[1], F_DUPFD_CLOEXEC, 10);
  ::close(raw[0]);
  ::close(raw[1]);

  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  env_strings.push_back(std::string(kChildDirEnv) + "=" + (dir.path() / "state").string());
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string exe = "/proc/self/exe";
  std::string filter = "--gtest_filter=CrashChild.DISABLED_MarkAndCountUntilKilled";
  std::string disabled = "--gtest_also_run_disabled_tests";
  std::vector<char*> argv{exe.data(), filter.data(), disabled.data(), nullptr};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, write_fd, kAckFd);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int spawned = ::posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(),
                                    envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(write_fd);
  ASSERT_EQ(spawned, 0);

  std::vector<Ack> acks;
  std::string pending;
  auto readAvailable = [&](int timeout_ms) {  // false at end of file
    pollfd p{read_fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return true;
    char buffer[4096];
    const ssize_t n = ::read(read_fd, buffer, sizeof buffer);
    if (n <= 0) return false;
    const auto now = steady_clock::now();
    pending.append(buffer, static_cast<std::size_t>(n));
    for (std::size_t eol; (eol = pending.find('\n')) != std::string::npos;) {
      Ack ack{0, 0, now};
      unsigned long long total = 0;
      if (std::sscanf(pending.c_str(), "%d %llu", &ack.index, &total) == 2) {
        ack.total = total;
        acks.push_back(ack);
      }
      pending.erase(0, eol + 1);
    }
    return true;
  };

  // Let the child run for 600 ms after its first acknowledgement (6 flush intervals).
  const auto give_up = steady_clock::now() + std::chrono::seconds(10);
  while (acks.empty() && steady_clock::now() < give_up && readAvailable(50)) {
  }
  const auto kill_at = steady_clock::now() + milliseconds(6 * kFlushIntervalMs);
  while (!acks.empty() && steady_clock::now() < kill_at && readAvailable(10)) {
  }
  const auto killed = steady_clock::now();
  ::kill(pid, SIGKILL);
  while (readAvailable(1000)) {  // what it wrote before dying is acknowledged too
  }
  ::close(read_fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the child stopped by itself (status " << status << ")";
  ASSERT_GE(acks.size(), 20u) << "the child made too little progress to prove anything";

  EmbeddedStoreOptions o;
  o.dir = dir.path() / "state";
  o.start_flusher = false;
  o.map_size_mb = 256;
  auto reopened = EmbeddedStore::open(o);
  ASSERT_TRUE(reopened) << reopened.error().message;
  EmbeddedStore& store = **reopened;

  std::size_t missing = 0;
  for (const auto& ack : acks) {
    auto got = store.getMark("acct-" + std::to_string(ack.index), Clock::now());
    if (!got || !*got) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "of " << acks.size() << " acknowledged marks";

  // The counter as of two flush intervals before the kill must have been committed.
  std::uint64_t committed_before = 0;
  for (const auto& ack : acks) {
    if (ack.received <= killed - milliseconds(2 * kFlushIntervalMs)) {
      committed_before = std::max(committed_before, ack.total);
    }
  }
  ASSERT_GT(committed_before, 0u);
  auto counted = store.execute(batch("counter", {sent(0)}), Clock::now());
  ASSERT_TRUE(counted);
  const std::uint64_t recovered = counted->counters[0].total;
  EXPECT_GE(recovered, committed_before) << "lost more than two flush intervals of counts";
  EXPECT_LE(recovered, acks.back().total + 1) << "counted what was never executed";
  std::printf("[crash] %zu marks acknowledged, all present; counter %llu acknowledged, %llu "
              "recovered, %llu required\n",
              acks.size(), static_cast<unsigned long long>(acks.back().total),
              static_cast<unsigned long long>(recovered),
              static_cast<unsigned long long>(committed_before));
}

}  // namespace
}  // namespace saslguard::store::testing
