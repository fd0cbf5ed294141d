// crash_test.cpp — stores that end without close(). Children (this test binary re-run with a
// gtest filter) either stop after a known sequence (the parent checks the journal replay
// exactly), or mark and count in a loop, acknowledging each step on a pipe, until the parent
// SIGKILLs them; then every acknowledged mark must be there and the counter may lack at most
// what the last group-commit intervals could hold.
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

#include "store/lmdb.hpp"
#include "store_test_util.hpp"

extern char** environ;

namespace saslguard::store::testing {
namespace {

constexpr const char* kChildDirEnv = "SASLGUARD_STORE_CRASH_CHILD_DIR";
constexpr const char* kCheckpointEnv = "SASLGUARD_STORE_CRASH_CHECKPOINT_S";
constexpr const char* kScenarioEnv = "SASLGUARD_STORE_SCENARIO";
constexpr int kAckFd = 3;
constexpr int kFlushIntervalMs = 100;

CounterOp sent(std::uint64_t amount) {
  return counter("sent", amount, 86400, 100);
}

// Runs only in the child the CrashSafety test starts (DISABLED_ keeps it out of normal runs; the
// environment variable keeps --gtest_also_run_disabled_tests from running it by accident).
TEST(CrashChild, DISABLED_MarkAndCountUntilKilled) {
  const char* dir = std::getenv(kChildDirEnv);
  if (dir == nullptr) GTEST_SKIP() << "started by CrashSafety only";
  EmbeddedStoreOptions o;
  o.dir = dir;
  o.flush_interval_ms = kFlushIntervalMs;
  o.map_size_mb = 256;
  o.checkpoint_interval_s = std::atoi(std::getenv(kCheckpointEnv));
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

// Starts this test binary running one CrashChild test, with `env` added to its environment and
// (when ack_fd >= 0) that descriptor as its fd 3.
pid_t spawnChild(const std::string& test, const std::vector<std::string>& env, int ack_fd) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  env_strings.insert(env_strings.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string exe = "/proc/self/exe";
  std::string filter = "--gtest_filter=CrashChild." + test;
  std::string disabled = "--gtest_also_run_disabled_tests";
  std::vector<char*> argv{exe.data(), filter.data(), disabled.data(), nullptr};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (ack_fd >= 0) posix_spawn_file_actions_adddup2(&actions, ack_fd, kAckFd);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int spawned =
      ::posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  return spawned == 0 ? pid : -1;
}

// ---- scenarios that end without close() -----------------------------------------------------

EmbeddedStoreOptions scenarioOptions(const std::filesystem::path& dir, int flush_interval_ms,
                                     int checkpoint_s) {
  EmbeddedStoreOptions o;
  o.dir = dir;
  o.start_flusher = false;
  o.map_size_mb = 64;
  o.idle_expiry_s = 100;
  o.flush_interval_ms = flush_interval_ms;
  o.checkpoint_interval_s = checkpoint_s;
  o.clock = [] { return at(50); };
  return o;
}

CounterOp hour(std::uint64_t amount) {
  return counter("hour", amount, 3600, 60);
}

// Two journaled flushes (the second forgets an idle account), then changes never flushed.
void stopWithoutClose(EmbeddedStore& store) {
  ASSERT_TRUE(store.execute(batch("kept", {hour(3)}), at(0)));
  ASSERT_TRUE(store.execute(batch("forgotten", {hour(1)}), at(0)));
  ASSERT_TRUE(store.mark("marked", mark("reputation", "listed"), at(0)));
  ASSERT_TRUE(store.flush());
  ASSERT_TRUE(store.execute(batch("kept", {hour(4)}), at(150)));
  ASSERT_TRUE(store.execute(batch("fresh", {hour(2)}), at(150)));
  ASSERT_TRUE(store.flush());  // "forgotten" has been idle for 150 s: forgotten, journaled
  ASSERT_TRUE(store.execute(batch("kept", {hour(100)}), at(151)));  // lost with the process
}

// A checkpoint that folds one shard per flush (flush_interval_ms 1 leaves it no time for more),
// interrupted after two: the accounts database holds some old and some new states, and both
// journals have records.
void interruptedCheckpoint(EmbeddedStore& store) {
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(store.execute(batch("a" + std::to_string(i), {hour(i + 1)}), at(0)));
  }
  ASSERT_TRUE(store.flush());  // journal A; the checkpoint starts, folds shard 0
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(store.execute(batch("a" + std::to_string(i), {hour(1000)}), at(1)));
  }
  ASSERT_TRUE(store.flush());  // journal B; the checkpoint folds shard 1
}

TEST(CrashChild, DISABLED_Scenario) {
  const char* dir = std::getenv(kChildDirEnv);
  const char* scenario = std::getenv(kScenarioEnv);
  if (dir == nullptr || scenario == nullptr) GTEST_SKIP() << "started by Journal tests only";
  const bool interrupted = std::string(scenario) == "interrupted-checkpoint";
  auto store =
      EmbeddedStore::open(scenarioOptions(dir, interrupted ? 1 : 1000, interrupted ? 0 : 3600));
  ASSERT_TRUE(store);
  if (interrupted) {
    interruptedCheckpoint(**store);
  } else {
    stopWithoutClose(**store);
  }
  std::fflush(stderr);
  _exit(::testing::Test::HasFailure() ? 1 : 0);  // no close(), no destructor
}

int runScenario(const std::string& scenario, const std::filesystem::path& dir) {
  const pid_t pid = spawnChild(
      "DISABLED_Scenario",
      {std::string(kChildDirEnv) + "=" + dir.string(), std::string(kScenarioEnv) + "=" + scenario},
      -1);
  int status = 0;
  if (pid <= 0 || ::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::size_t journalRecords(const std::filesystem::path& dir) {
  auto env = lmdb::Env::open(dir / "state.mdb", 64, 8);
  if (!env) return SIZE_MAX;
  auto txn = lmdb::Txn::beginRead(*env);
  std::size_t records = 0;
  for (const char* name : {"journal-a", "journal-b"}) {
    auto db = txn->openDb(name, false);
    if (db) records += txn->entries(*db).value_or(0);
  }
  return records;
}

std::uint64_t hourTotal(EmbeddedStore& store, const std::string& account, TimePoint now) {
  auto result = store.execute(batch(account, {hour(0)}), now);
  return result ? result->counters.at(0).total : UINT64_MAX;
}

TEST(Journal, AStoreNeverClosedIsRebuiltFromItsJournal) {
  saslguard::testing::TempDir dir;
  ASSERT_EQ(runScenario("stop-without-close", dir.path()), 0);
  EXPECT_GT(journalRecords(dir.path()), 0u) << "nothing was folded";
  {
    auto store = EmbeddedStore::open(scenarioOptions(dir.path(), 1000, 3600));
    ASSERT_TRUE(store) << store.error().message;
    EXPECT_EQ(hourTotal(**store, "kept", at(151)), 7u) << "both flushes, not the unflushed 100";
    EXPECT_EQ(hourTotal(**store, "fresh", at(151)), 2u);
    EXPECT_TRUE(isMarked(**store, "marked", at(151)));
    EXPECT_EQ((*store)->stats().accounts, 3u)
        << "the journaled deletion removed 'forgotten' (at the load time of 50 s it is not idle)";
  }
  EXPECT_EQ(journalRecords(dir.path()), 0u) << "opening folded the journal";
  auto reopened = EmbeddedStore::open(scenarioOptions(dir.path(), 1000, 3600));
  ASSERT_TRUE(reopened);
  EXPECT_EQ(hourTotal(**reopened, "kept", at(151)), 7u);
  EXPECT_EQ((*reopened)->stats().accounts, 3u);
}

TEST(Journal, AnInterruptedCheckpointReplaysBothJournalsInOrder) {
  saslguard::testing::TempDir dir;
  ASSERT_EQ(runScenario("interrupted-checkpoint", dir.path()), 0);
  EXPECT_GT(journalRecords(dir.path()), 200u) << "both journals hold records";
  auto store = EmbeddedStore::open(scenarioOptions(dir.path(), 1000, 3600));
  ASSERT_TRUE(store) << store.error().message;
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(hourTotal(**store, "a" + std::to_string(i), at(2)),
              static_cast<std::uint64_t>(i + 1 + 1000))
        << "a" << i;
  }
}

// ---- kill -9 ---------------------------------------------------------------------------------

struct Ack {
  int index;
  std::uint64_t total;
  std::chrono::steady_clock::time_point received;
};

// checkpoint_s 0: a checkpoint runs in every flush interval, so the kill lands in one.
void killNineLosesNoMarkAndAtMostAFewFlushIntervalsOfCounts(int checkpoint_s) {
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

  const pid_t pid = spawnChild("DISABLED_MarkAndCountUntilKilled",
                               {std::string(kChildDirEnv) + "=" + (dir.path() / "state").string(),
                                std::string(kCheckpointEnv) + "=" + std::to_string(checkpoint_s)},
                               write_fd);
  ::close(write_fd);
  ASSERT_GT(pid, 0);

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
  std::printf(
      "[crash] checkpoint every %d s: %zu marks acknowledged, all present; counter %llu "
      "acknowledged, %llu recovered, %llu required\n",
      checkpoint_s, acks.size(), static_cast<unsigned long long>(acks.back().total),
      static_cast<unsigned long long>(recovered),
      static_cast<unsigned long long>(committed_before));
}

TEST(CrashSafety, KillNineLosesNoMarkAndAtMostAFewFlushIntervalsOfCounts) {
  killNineLosesNoMarkAndAtMostAFewFlushIntervalsOfCounts(60);
}

TEST(CrashSafety, KillNineDuringCheckpointsLosesNothingEither) {
  killNineLosesNoMarkAndAtMostAFewFlushIntervalsOfCounts(0);
}

}  // namespace
}  // namespace saslguard::store::testing
