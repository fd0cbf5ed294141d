// hook_runner_test.cpp — the hook command as the operator's script sees it: exactly the promised
// environment, attacker-controlled values as inert bytes, timeouts that kill the whole process
// group, a bounded queue under a flood, and no child left behind (not even a zombie).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "metrics/metrics.hpp"
#include "notify/hook_runner.hpp"
#include "notify/notifier.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::notify {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

std::uint64_t counter(std::string_view name) {
  for (const auto& sample : metrics::snapshot()) {
    if (sample.name == name) return sample.value;
  }
  ADD_FAILURE() << "no counter " << name;
  return 0;
}

template <class Predicate>
bool waitUntil(Predicate predicate, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string writeScript(const TempDir& dir, const std::string& name, const std::string& body) {
  const auto path = dir / name;
  std::ofstream(path) << "#!/bin/sh\n" << body;
  ::chmod(path.c_str(), 0755);
  return path.string();
}

// Waits for a file a hook writes its PID into; 0 if it never comes.
pid_t pidFrom(const std::filesystem::path& path) {
  pid_t pid = 0;
  waitUntil([&] {
    std::istringstream in(readFile(path));
    return static_cast<bool>(in >> pid) && pid > 0;
  });
  return pid;
}

bool processGone(pid_t pid) {
  return ::kill(pid, 0) != 0 && errno == ESRCH;
}

// Every child this test process started has been reaped: none alive, none a zombie.
bool noChildrenLeft() {
  int status = 0;
  return ::waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD;
}

Notice sampleNotice(std::string account = "alice@example.org") {
  Notice notice;
  notice.account = std::move(account);
  notice.detector = "reputation";
  notice.action = "REJECT";
  notice.reason = "client 192.0.2.10 listed in authbl.example";
  notice.evidence = R"({"zone":"authbl.example","answer":"127.0.0.2"})";
  notice.client_address = "192.0.2.10";
  notice.at = fromUnixMs(1795417937000);  // 2026-11-23T07:12:17Z
  notice.attributes = {{"request", "smtpd_access_policy"},
                       {"protocol_state", "RCPT"},
                       {"sasl_username", notice.account},
                       {"client_address", "192.0.2.10"}};
  return notice;
}

// The hook's environment as "NAME" -> "value", read from `env -0` output.
std::map<std::string, std::string> parseEnvironment(const std::string& dump) {
  std::map<std::string, std::string> out;
  std::size_t start = 0;
  while (start < dump.size()) {
    auto end = dump.find('\0', start);
    if (end == std::string::npos) end = dump.size();
    const auto entry = dump.substr(start, end - start);
    const auto equals = entry.find('=');
    out[entry.substr(0, equals)] = entry.substr(equals + 1);
    start = end + 1;
  }
  return out;
}

// Records what the runner logs, for as long as it lives.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_);
    auto logger = std::make_shared<spdlog::logger>("captured", sink);
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::string text() {
    spdlog::default_logger()->flush();
    return stream_.str();
  }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream stream_;
};

HookRunner::Ptr makeRunner(HookOptions options) {
  auto runner = HookRunner::create(std::move(options));
  EXPECT_TRUE(runner) << (runner ? "" : runner.error().message);
  return runner ? std::move(*runner) : nullptr;
}

bool waitIdle(HookRunner& runner, std::chrono::milliseconds timeout = 20s) {
  return waitUntil([&] { return runner.queued() == 0 && runner.running() == 0; }, timeout);
}

// dash exports PWD on its own; everything else in the dump comes from the runner.
constexpr const char* kDumpEnvironment = "unset PWD\nexec /usr/bin/env -0 > \"$1\"\n";

TEST(HookEnvironment, SanitisesNamesAndSkipsCollisions) {
  EXPECT_EQ(environmentName("sasl_username"), "sasl_username");
  EXPECT_EQ(environmentName("ccert.subject"), "ccert_subject");
  EXPECT_EQ(environmentName("a-b c"), "a_b_c");
  EXPECT_EQ(environmentName("1st"), "_1st");
  EXPECT_EQ(environmentName("caf\xc3\xa9"), "caf__");
  EXPECT_EQ(environmentName(""), "");
  EXPECT_EQ(environmentName("PATH"), "");
  EXPECT_EQ(environmentName("SASLGUARD_ACCOUNT"), "");
  EXPECT_EQ(environmentName("SASLGUARD.ACCOUNT"), "");  // sanitises into a collision
  EXPECT_EQ(environmentName("LD_PRELOAD"), "");
  EXPECT_EQ(environmentName("BASH_ENV"), "");
  EXPECT_EQ(environmentName("path"), "path");  // case matters to execve
  EXPECT_EQ(environmentName(std::string("ab\0cd", 5)), "ab");
}

TEST(HookEnvironment, ListsPathAttributesThenSaslguardVariables) {
  const auto environment = hookEnvironment(sampleNotice(), "/usr/bin:/bin");
  const std::vector<std::string> expected{
      "PATH=/usr/bin:/bin",
      "request=smtpd_access_policy",
      "protocol_state=RCPT",
      "sasl_username=alice@example.org",
      "client_address=192.0.2.10",
      "SASLGUARD_ACCOUNT=alice@example.org",
      "SASLGUARD_DETECTOR=reputation",
      "SASLGUARD_ACTION=REJECT",
      "SASLGUARD_REASON=client 192.0.2.10 listed in authbl.example",
      R"(SASLGUARD_EVIDENCE={"zone":"authbl.example","answer":"127.0.0.2"})",
      "SASLGUARD_CLIENT_ADDRESS=192.0.2.10",
      "SASLGUARD_TIME=2026-11-23T07:12:17Z"};
  EXPECT_EQ(environment, expected);
}

TEST(HookEnvironment, RepeatedNameKeepsOneEntryWithTheLastValue) {
  Notice notice = sampleNotice();
  notice.attributes = {{"a-b", "first"}, {"a_b", "second"}, {"x", "1"}};
  const auto environment = hookEnvironment(notice, "/bin");
  EXPECT_EQ(environment[1], "a_b=second");
  EXPECT_EQ(environment[2], "x=1");
}

TEST(HookRunnerCreate, RefusesCommandsThatCannotRun) {
  TempDir dir;
  std::ofstream(dir / "not-executable") << "#!/bin/sh\n";
  auto result = HookRunner::create({.command = {(dir / "not-executable").string()}});
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find((dir / "not-executable").string()), std::string::npos)
      << result.error().message;

  result = HookRunner::create({.command = {"report.sh"}});
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("absolute"), std::string::npos) << result.error().message;

  result = HookRunner::create({.command = {"/bin/true"}, .max_running = 0});
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("max_running"), std::string::npos);

  auto notifier = Notifier::create({.command = {"/nonexistent/hook"}}, {});
  ASSERT_FALSE(notifier);
  EXPECT_NE(notifier.error().message.find("/nonexistent/hook"), std::string::npos);
}

TEST(HookRunner, EnvironmentIsExactlyWhatWasPromised) {
  TempDir dir;
  const auto script = writeScript(dir, "dump-env", kDumpEnvironment);
  auto runner = makeRunner({.command = {script, (dir / "env").string()}, .path = "/usr/bin:/bin"});
  ASSERT_TRUE(runner);
  const auto started = counter("hooks_started_total");
  const auto failed = counter("hooks_failed_total");
  runner->submit(sampleNotice());
  ASSERT_TRUE(waitUntil([&] { return counter("hooks_started_total") == started + 1; }));
  ASSERT_TRUE(waitIdle(*runner));

  const std::map<std::string, std::string> expected{
      {"PATH", "/usr/bin:/bin"},
      {"request", "smtpd_access_policy"},
      {"protocol_state", "RCPT"},
      {"sasl_username", "alice@example.org"},
      {"client_address", "192.0.2.10"},
      {"SASLGUARD_ACCOUNT", "alice@example.org"},
      {"SASLGUARD_DETECTOR", "reputation"},
      {"SASLGUARD_ACTION", "REJECT"},
      {"SASLGUARD_REASON", "client 192.0.2.10 listed in authbl.example"},
      {"SASLGUARD_EVIDENCE", R"({"zone":"authbl.example","answer":"127.0.0.2"})"},
      {"SASLGUARD_CLIENT_ADDRESS", "192.0.2.10"},
      {"SASLGUARD_TIME", "2026-11-23T07:12:17Z"}};
  EXPECT_EQ(parseEnvironment(readFile(dir / "env")), expected);  // no HOME, USER, LD_*, ...
  EXPECT_EQ(counter("hooks_failed_total"), failed);
  runner->requestStop(std::chrono::steady_clock::now());
  runner->join();
  EXPECT_TRUE(noChildrenLeft());
}

TEST(HookRunner, HostileValuesArriveAsInertBytes) {
  TempDir dir;
  const auto script = writeScript(dir, "dump-env", kDumpEnvironment);
  auto runner = makeRunner({.command = {script, (dir / "env").string()}});
  ASSERT_TRUE(runner);
  const std::string pwned = (dir / "pwned").string();
  Notice notice = sampleNotice("$(touch " + pwned + ")");
  notice.reason = "`touch " + pwned + "`";
  notice.attributes = {
      {"sasl_username", "$(touch " + pwned + ")"},
      {"helo_name", "`touch " + pwned + "`"},
      {"sender", "a@b; touch " + pwned + "; echo"},
      {"recipient", "'\"quoted\"' && touch " + pwned},
      {"ccert_subject", "line one\nline two\r\nSASLGUARD_ACTION=DUNNO"},
      {"client_name", "caf\xc3\xa9 \xff\xfe\x01\x7f"},
      {"reverse_client_name", std::string("before\0after", 12)},
      {"SASLGUARD_ACCOUNT", "forged"},
      {"PATH", "/tmp/evil"},
      {"LD_PRELOAD", "/tmp/evil.so"},
      {"", "nameless"},
      {"9lives", "digit"},
  };
  runner->submit(notice);
  ASSERT_TRUE(waitUntil([&] { return std::filesystem::exists(dir / "env"); }));
  ASSERT_TRUE(waitIdle(*runner));

  const auto environment = parseEnvironment(readFile(dir / "env"));
  EXPECT_EQ(environment.at("sasl_username"), "$(touch " + pwned + ")");
  EXPECT_EQ(environment.at("helo_name"), "`touch " + pwned + "`");
  EXPECT_EQ(environment.at("sender"), "a@b; touch " + pwned + "; echo");
  EXPECT_EQ(environment.at("recipient"), "'\"quoted\"' && touch " + pwned);
  EXPECT_EQ(environment.at("ccert_subject"), "line one\nline two\r\nSASLGUARD_ACTION=DUNNO");
  EXPECT_EQ(environment.at("client_name"), "caf\xc3\xa9 \xff\xfe\x01\x7f");
  EXPECT_EQ(environment.at("reverse_client_name"), "before");
  EXPECT_EQ(environment.at("_9lives"), "digit");
  EXPECT_EQ(environment.at("SASLGUARD_ACCOUNT"), "$(touch " + pwned + ")");
  EXPECT_EQ(environment.at("SASLGUARD_ACTION"), "REJECT");
  EXPECT_EQ(environment.at("SASLGUARD_REASON"), "`touch " + pwned + "`");
  EXPECT_EQ(environment.at("PATH"), HookOptions{}.path);
  EXPECT_EQ(environment.count("LD_PRELOAD"), 0u);
  EXPECT_EQ(environment.count(""), 0u);
  EXPECT_EQ(environment.size(), 9u + 7u);  // 9 attributes kept, PATH and 6+1 SASLGUARD_*
  EXPECT_FALSE(std::filesystem::exists(pwned));
  runner->requestStop(std::chrono::steady_clock::now());
  runner->join();
  EXPECT_TRUE(noChildrenLeft());
}

TEST(HookRunner, HookInheritsNoDescriptorsBlockedOrIgnoredSignals) {
  TempDir dir;
  const auto script = writeScript(
      dir, "inspect",
      "/bin/ls /proc/self/fd > \"$1\"\n/bin/grep -E '^Sig(Blk|Ign)' /proc/self/status > "
      "\"$2\"\n");
  // What a daemon typically has: a descriptor without O_CLOEXEC, SIGPIPE ignored and SIGTERM
  // blocked in every thread (a signal thread waits for it). The runner thread inherits the mask.
  const int leaked = ::dup2(::open("/dev/null", O_RDONLY), 57);
  const auto previous_pipe = ::signal(SIGPIPE, SIG_IGN);
  sigset_t term, previous_mask;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &term, &previous_mask);
  auto runner =
      makeRunner({.command = {script, (dir / "fds").string(), (dir / "signals").string()}});
  ::pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);
  ::signal(SIGPIPE, previous_pipe);
  ASSERT_TRUE(runner);
  runner->submit(sampleNotice());
  runner->requestStop(std::chrono::steady_clock::now() + 10s);
  runner->join();
  ::close(leaked);
  EXPECT_EQ(readFile(dir / "fds"), "0\n1\n2\n3\n");  // 3: ls reading /proc/self/fd
  std::istringstream signals(readFile(dir / "signals"));
  std::string label, blocked, ignored;
  signals >> label >> blocked >> label >> ignored;
  EXPECT_EQ(std::stoull(blocked, nullptr, 16), 0u);
  // glibc's posix_spawn leaves its two internal signals (32, 33: thread cancellation and
  // setxid, below SIGRTMIN) ignored in the child; nothing a hook uses.
  EXPECT_EQ(std::stoull(ignored, nullptr, 16) & ~(3ull << 31), 0u) << ignored;
  EXPECT_TRUE(noChildrenLeft());
}

TEST(HookRunner, HangingHookIsKilledWithItsProcessGroupAtTheTimeout) {
  TempDir dir;
  // The script and a background child of its own: both are in the hook's process group.
  const auto script =
      writeScript(dir, "hang", "/bin/sleep 60 &\necho $! > \"$2\"\necho $$ > \"$1\"\nwait\n");
  CapturedLog log;
  auto runner = makeRunner(
      {.command = {script, (dir / "pid").string(), (dir / "child").string()}, .timeout = 300ms});
  ASSERT_TRUE(runner);
  const auto killed = counter("hooks_killed_total");
  const auto begin = std::chrono::steady_clock::now();
  runner->submit(sampleNotice());
  const pid_t pid = pidFrom(dir / "pid");
  const pid_t child = pidFrom(dir / "child");
  ASSERT_GT(pid, 0);
  ASSERT_GT(child, 0);
  ASSERT_TRUE(waitUntil([&] { return counter("hooks_killed_total") == killed + 1; }));
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 5s);
  EXPECT_TRUE(processGone(pid));
  EXPECT_TRUE(waitUntil([&] { return processGone(child); }, 5s));  // reparented, then killed
  EXPECT_NE(log.text().find("(timeout)"), std::string::npos) << log.text();
  ASSERT_TRUE(waitIdle(*runner));
  runner->requestStop(std::chrono::steady_clock::now());
  runner->join();
  EXPECT_TRUE(noChildrenLeft());
}

TEST(HookRunner, HookIgnoringSigtermGetsSigkillTwoSecondsLater) {
  TempDir dir;
  const auto script =
      writeScript(dir, "stubborn", "trap '' TERM\necho $$ > \"$1\"\n/bin/sleep 60\n");
  auto runner = makeRunner({.command = {script, (dir / "pid").string()}, .timeout = 200ms});
  ASSERT_TRUE(runner);
  const auto killed = counter("hooks_killed_total");
  const auto begin = std::chrono::steady_clock::now();
  runner->submit(sampleNotice());
  const pid_t pid = pidFrom(dir / "pid");
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(waitUntil([&] { return counter("hooks_killed_total") == killed + 1; }));
  const auto elapsed = std::chrono::steady_clock::now() - begin;
  EXPECT_GE(elapsed, 200ms + kKillGrace);
  EXPECT_LT(elapsed, 200ms + kKillGrace + 3s);
  EXPECT_TRUE(processGone(pid));
  // The whole group, sleep included; sleep is reaped by whoever inherits it, a moment later.
  EXPECT_TRUE(waitUntil([&] { return processGone(-pid); }, 5s));
  runner->requestStop(std::chrono::steady_clock::now());
  runner->join();
  EXPECT_TRUE(noChildrenLeft());
}

TEST(HookRunner, NonZeroExitIsLoggedWithStderrAndCounted) {
  CapturedLog log;
  auto runner = makeRunner({.command = {"/bin/sh", "-c", "echo 'mail relay refused' >&2; exit 3"}});
  ASSERT_TRUE(runner);
  const auto failed = counter("hooks_failed_total");
  runner->submit(sampleNotice());
  ASSERT_TRUE(waitUntil([&] { return counter("hooks_failed_total") == failed + 1; }));
  const auto text = log.text();
  EXPECT_NE(text.find("exit status 3"), std::string::npos) << text;
  EXPECT_NE(text.find("mail relay refused"), std::string::npos) << text;
  EXPECT_NE(text.find("alice@example.org"), std::string::npos) << text;
  runner->requestStop(std::chrono::steady_clock::now() + 5s);
  runner->join();
  EXPECT_TRUE(noChildrenLeft());
}

TEST(HookRunner, StderrIsCappedAndDrainedSoTheHookNeverBlocks) {
  CapturedLog log;
  // 1 MiB on stderr: more than a pipe holds, so the runner must keep reading.
  auto runner = makeRunner(
      {.command = {"/bin/sh", "-c", "/usr/bin/head -c 1048576 /dev/zero | /usr/bin/tr '\\0' x >&2"},
       .timeout = 20s});
  ASSERT_TRUE(runner);
  const auto killed = counter("hooks_killed_total");
  runner->submit(sampleNotice());
  ASSERT_TRUE(waitUntil([&] { return log.text().find("finished") != std::string::npos; }))
      << log.text();
  EXPECT_EQ(counter("hooks_killed_total"), killed);
  EXPECT_NE(log.text().find("(truncated)"), std::string::npos);
  EXPECT_LT(log.text().size(), 2 * kStderrLimitBytes + 1024);
  runner->requestStop(std::chrono::steady_clock::now() + 5s);
  runner->join();
}

TEST(HookRunner, SpawnFailureAtRunTimeIsCounted) {
  TempDir dir;
  const auto script = writeScript(dir, "vanishing", "exit 0\n");
  auto runner = makeRunner({.command = {script}});
  ASSERT_TRUE(runner);
  std::filesystem::remove(script);  // the operator deleted it after start-up
  const auto failed = counter("hooks_failed_total");
  const auto started = counter("hooks_started_total");
  runner->submit(sampleNotice());
  ASSERT_TRUE(waitUntil([&] { return counter("hooks_failed_total") == failed + 1; }));
  EXPECT_EQ(counter("hooks_started_total"), started);
  runner->requestStop(std::chrono::steady_clock::now());
  runner->join();
}

TEST(HookRunner, FloodIsBoundedByTheQueue) {
  auto runner = makeRunner({.command = {"/bin/sleep", "0.3"}, .max_running = 1, .max_queued = 100});
  ASSERT_TRUE(runner);
  const auto dropped = counter("hooks_dropped_total");
  const auto started = counter("hooks_started_total");
  std::size_t most_queued = 0;
  const auto notice = sampleNotice();
  for (int i = 0; i < 10000; ++i) {
    runner->submit(notice);
    most_queued = std::max(most_queued, runner->queued());
  }
  EXPECT_LE(most_queued, 100u);
  EXPECT_LE(runner->running(), 1u);
  const auto dropped_in_flood = counter("hooks_dropped_total") - dropped;
  EXPECT_GE(dropped_in_flood, 9890u);  // 10,000 - 100 queued - the one or two started
  EXPECT_LE(dropped_in_flood, 9900u);
  // Stopping now kills the running one and drops the rest: every submit is accounted for.
  runner->requestStop(std::chrono::steady_clock::now());
  runner->join();
  const auto started_total = counter("hooks_started_total") - started;
  EXPECT_EQ(counter("hooks_dropped_total") - dropped + started_total, 10000u);
  EXPECT_EQ(runner->queued(), 0u);
  EXPECT_TRUE(noChildrenLeft());
}

TEST(HookRunner, StopKillsHooksStillRunningAfterTheGrace) {
  TempDir dir;
  const auto script = writeScript(dir, "slow", "echo $$ > \"$1\"\nexec /bin/sleep 60\n");
  auto runner = makeRunner({.command = {script, (dir / "pid").string()}, .timeout = 30s});
  ASSERT_TRUE(runner);
  const auto killed = counter("hooks_killed_total");
  runner->submit(sampleNotice());
  const pid_t pid = pidFrom(dir / "pid");
  ASSERT_GT(pid, 0);
  const auto begin = std::chrono::steady_clock::now();
  runner->requestStop(begin + 200ms);
  runner->join();
  EXPECT_GE(std::chrono::steady_clock::now() - begin, 150ms);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 3s);
  EXPECT_EQ(counter("hooks_killed_total"), killed + 1);
  EXPECT_TRUE(processGone(pid));
  EXPECT_TRUE(noChildrenLeft());
}

TEST(HookRunner, StopWaitsForQueuedHooksWithinTheGrace) {
  TempDir dir;
  const auto script = writeScript(dir, "append", "echo run >> \"$1\"\n");
  auto runner = makeRunner({.command = {script, (dir / "runs").string()}, .max_running = 2});
  ASSERT_TRUE(runner);
  for (int i = 0; i < 10; ++i) runner->submit(sampleNotice());
  runner->requestStop(std::chrono::steady_clock::now() + 20s);
  runner->join();
  const auto runs = readFile(dir / "runs");
  EXPECT_EQ(std::count(runs.begin(), runs.end(), '\n'), 10);
  EXPECT_TRUE(noChildrenLeft());
}

TEST(HookRunner, SubmitAfterStopIsDropped) {
  auto runner = makeRunner({.command = {"/bin/true"}});
  ASSERT_TRUE(runner);
  runner->requestStop(std::chrono::steady_clock::now());
  runner->join();
  const auto dropped = counter("hooks_dropped_total");
  runner->submit(sampleNotice());
  EXPECT_EQ(counter("hooks_dropped_total"), dropped + 1);
}

TEST(HookRunner, TrivialHooksThroughput) {
  auto runner = makeRunner({.command = {"/bin/true"}, .max_running = 4, .max_queued = 1000});
  ASSERT_TRUE(runner);
  constexpr int kRuns = 300;
  const auto started = counter("hooks_started_total");
  const auto failed = counter("hooks_failed_total");
  const auto begin = std::chrono::steady_clock::now();
  for (int i = 0; i < kRuns; ++i) runner->submit(sampleNotice());
  ASSERT_TRUE(waitUntil([&] { return counter("hooks_started_total") == started + kRuns; }, 60s));
  ASSERT_TRUE(waitIdle(*runner, 60s));
  const auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - begin);
  EXPECT_EQ(counter("hooks_failed_total"), failed);
  std::cout << "[ measured ] " << kRuns
            << " runs of /bin/true, 4 at a time: " << elapsed.count() / 1000 << " ms, "
            << elapsed.count() / kRuns << " us per hook\n";
  runner->requestStop(std::chrono::steady_clock::now());
  runner->join();
  EXPECT_TRUE(noChildrenLeft());
}

TEST(Notifier, HookOnlyNotifierRunsTheHookAndStops) {
  TempDir dir;
  const auto script = writeScript(dir, "dump-env", kDumpEnvironment);
  auto notifier = Notifier::create({.command = {script, (dir / "env").string()}}, {});
  ASSERT_TRUE(notifier) << notifier.error().message;
  (*notifier)->submit(sampleNotice("bob@example.org"));
  (*notifier)->stop(10s);  // the queued run still happens within the grace
  EXPECT_EQ(parseEnvironment(readFile(dir / "env")).at("SASLGUARD_ACCOUNT"), "bob@example.org");
  EXPECT_TRUE(noChildrenLeft());
}

TEST(Notifier, NothingConfiguredIsANoOp) {
  auto notifier = Notifier::create({}, {});
  ASSERT_TRUE(notifier);
  (*notifier)->submit(sampleNotice());
  (*notifier)->stop(0ms);
}

}  // namespace
}  // namespace saslguard::notify
