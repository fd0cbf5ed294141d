// daemon_test.cpp — black-box tests: the built saslguard binary on a free loopback port and a
// unix socket in a temporary directory, driven the way Postfix drives it (persistent connections,
// pipelined requests), plus reloads, stops, crashes and hostile input.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/daemon_process.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::testing {
namespace {

using namespace std::chrono_literals;

const std::string kReject =
    "action=REJECT 5.7.1 Sending from this account is blocked; contact your support";

struct Daemon {
  TempDir dir;
  std::unique_ptr<DaemonProcess> process;

  explicit Daemon(std::vector<std::string> extra = {}, std::string config_text = "") {
    std::vector<std::string> args{"--listen", "127.0.0.1:0", "--state-dir",
                                  (dir / "state").string()};
    if (!config_text.empty()) writeConfig(config_text);
    if (!config_text.empty()) {
      args.push_back("--config");
      args.push_back(configPath());
    }
    args.insert(args.end(), extra.begin(), extra.end());
    process = std::make_unique<DaemonProcess>(args, dir / "daemon.log");
  }
  std::string configPath() const { return (dir / "saslguard.toml").string(); }
  void writeConfig(const std::string& text) const { std::ofstream(configPath()) << text; }
  PolicyClient connect() const {
    auto client = PolicyClient::connectTcp(process->port());
    EXPECT_TRUE(client.has_value()) << "cannot connect to port " << process->port();
    return std::move(*client);
  }
};

TEST(Daemon, AnswersAPostfixRequestWithDunnoOnItsEmbeddedDefaults) {
  Daemon daemon;
  ASSERT_TRUE(daemon.process->ready()) << daemon.process->log();
  auto client = daemon.connect();
  EXPECT_EQ(client.ask(postfixRequest("alice@example.org")), "action=DUNNO");
  EXPECT_EQ(client.ask(postfixRequest("")), "action=DUNNO");  // unauthenticated: not ours
  daemon.process->signal(SIGTERM);
  EXPECT_EQ(daemon.process->wait(), 0) << daemon.process->log();
}

TEST(Daemon, AnswersAThousandPipelinedRequestsInOrderOnOneConnection) {
  std::string deny;
  for (int i = 1; i < 1000; i += 2)
    deny += (deny.empty() ? "" : ",") + ("user" + std::to_string(i) + "@example.org");
  Daemon daemon({"--detectors-denylist-accounts", deny});
  ASSERT_TRUE(daemon.process->ready()) << daemon.process->log();
  auto client = daemon.connect();
  std::string batch;
  for (int i = 0; i < 1000; ++i)
    batch += postfixRequest("user" + std::to_string(i) + "@example.org");
  ASSERT_TRUE(client.send(batch));
  for (int i = 0; i < 1000; ++i) {
    const auto reply = client.readReply();
    ASSERT_TRUE(reply.has_value()) << "reply " << i << " missing";
    EXPECT_EQ(*reply, i % 2 == 1 ? kReject : "action=DUNNO") << "reply " << i;
  }
}

TEST(Daemon, MalformedAndOversizedRequestsGetADefinedReplyAndOthersAreUnaffected) {
  Daemon daemon({"--protocol-max-request-bytes", "4096", "--protocol-max-line-bytes", "1024"});
  ASSERT_TRUE(daemon.process->ready()) << daemon.process->log();
  auto good = daemon.connect();
  auto bad = daemon.connect();
  EXPECT_EQ(bad.ask("this is not a policy request\n\n"), "action=DUNNO");
  EXPECT_EQ(good.ask(postfixRequest("alice@example.org")), "action=DUNNO");
  EXPECT_EQ(
      bad.ask("request=smtpd_access_policy\nccert_subject=" + std::string(100000, 'A') + "\n\n"),
      "action=DUNNO");
  static constexpr char kBinary[] = "request=smtpd_access_policy\nsasl_username=\x01\xff\x00x\n\n";
  EXPECT_EQ(bad.ask(std::string(kBinary, sizeof kBinary - 1)), "action=DUNNO");
  // The same connections keep working after all of that.
  EXPECT_EQ(bad.ask(postfixRequest("bob@example.org")), "action=DUNNO");
  EXPECT_EQ(good.ask(postfixRequest("alice@example.org")), "action=DUNNO");
  EXPECT_TRUE(daemon.process->waitForLog("malformed policy request: line without '='"));
  EXPECT_TRUE(daemon.process->waitForLog("oversized policy request: line too long"));
  // A peer that closes halfway through a request is counted and logged, nothing else.
  {
    auto truncated = daemon.connect();
    ASSERT_TRUE(truncated.send("request=smtpd_access_policy\nsasl_username=half"));
  }
  EXPECT_TRUE(daemon.process->waitForLog("closed in the middle of a request"));
  EXPECT_EQ(good.ask(postfixRequest("alice@example.org")), "action=DUNNO");
  // Every one of those was counted.
  const auto stats = runSaslguard({"stats", "--state-dir", (daemon.dir / "state").string()});
  EXPECT_EQ(stats.exit_code, 0) << stats.output;
  EXPECT_NE(stats.output.find("malformed_total 1\n"), std::string::npos) << stats.output;
  EXPECT_NE(stats.output.find("oversized_total 1\n"), std::string::npos) << stats.output;
  EXPECT_NE(stats.output.find("truncated_total 1\n"), std::string::npos) << stats.output;
  EXPECT_NE(stats.output.find("requests_total 7\n"), std::string::npos) << stats.output;
}

TEST(Daemon, ListensOnAUnixSocketWithTheConfiguredMode) {
  TempDir dir;
  const auto socket = (dir / "policy.sock").string();
  DaemonProcess process({"--listen", "unix:" + socket, "--state-dir", (dir / "state").string(),
                         "--server-unix-socket-mode", "0620"},
                        dir / "daemon.log");
  ASSERT_TRUE(process.ready()) << process.log();
  struct stat info {};
  ASSERT_EQ(::stat(socket.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0620u);
  auto client = PolicyClient::connectUnix(socket);
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(client->ask(postfixRequest("alice@example.org")), "action=DUNNO");
  process.signal(SIGTERM);
  EXPECT_EQ(process.wait(), 0);
  EXPECT_FALSE(std::filesystem::exists(dir / "state" / "control.sock"));
}

TEST(Daemon, ReloadsAGoodConfigurationAndKeepsTheOldOneOnABadOneUnderLoad) {
  Daemon daemon({}, "[detectors.denylist]\naccounts = []\n");
  ASSERT_TRUE(daemon.process->ready()) << daemon.process->log();
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, answered{0}, rejected{0};
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&] {
      auto client = PolicyClient::connectTcp(daemon.process->port());
      if (!client) {
        ++failures;
        return;
      }
      while (!stop) {
        const auto reply = client->ask(postfixRequest("mallory@example.org"));
        if (!reply) {
          ++failures;
          return;
        }
        ++answered;
        if (*reply == kReject) ++rejected;
      }
    });
  }
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(rejected, 0);
  daemon.writeConfig("[detectors.denylist]\naccounts = [\"Mallory@Example.org\"]\n");
  daemon.process->signal(SIGHUP);
  ASSERT_TRUE(daemon.process->waitForLog("configuration reloaded")) << daemon.process->log();
  std::this_thread::sleep_for(200ms);
  const int rejectedAfterGoodReload = rejected;
  EXPECT_GT(rejectedAfterGoodReload, 0);

  daemon.writeConfig("[detectors.denylist]\naccounts = [\"x\"]\nno_such_option = 1\n");
  daemon.process->signal(SIGHUP);
  ASSERT_TRUE(daemon.process->waitForLog("reload rejected")) << daemon.process->log();
  EXPECT_NE(daemon.process->log().find("detectors.denylist.no_such_option"), std::string::npos);
  const int before = rejected;
  std::this_thread::sleep_for(200ms);
  EXPECT_GT(rejected, before);  // still the good configuration: mallory still rejected
  stop = true;
  for (auto& thread : load) thread.join();
  EXPECT_EQ(failures, 0) << "a connection was dropped during reload";
  EXPECT_GT(answered, 100);
}

TEST(Daemon, SigtermAnswersRequestsInFlightThenExitsCleanly) {
  Daemon daemon;
  ASSERT_TRUE(daemon.process->ready()) << daemon.process->log();
  auto idle = daemon.connect();
  auto busy = daemon.connect();
  EXPECT_EQ(idle.ask(postfixRequest("a@example.org")), "action=DUNNO");
  // Half a request is on the wire when the stop begins; the rest follows shortly after.
  const auto request = postfixRequest("b@example.org");
  ASSERT_TRUE(busy.send(request.substr(0, 100)));
  std::this_thread::sleep_for(100ms);
  daemon.process->signal(SIGTERM);
  EXPECT_TRUE(idle.closedByPeer(2s)) << "an idle connection is closed at once";
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(busy.send(request.substr(100)));
  EXPECT_EQ(busy.readReply(), "action=DUNNO");
  EXPECT_EQ(daemon.process->wait(), 0) << daemon.process->log();
  EXPECT_NE(daemon.process->log().find("saslguard stopped"), std::string::npos);
}

TEST(Daemon, ClosesIdleConnectionsAndRefusesConnectionsOverTheCap) {
  Daemon daemon({"--server-idle-timeout-s", "1", "--server-max-connections", "3"});
  ASSERT_TRUE(daemon.process->ready()) << daemon.process->log();
  auto a = daemon.connect();
  auto b = daemon.connect();
  auto c = daemon.connect();
  EXPECT_EQ(a.ask(postfixRequest("a@example.org")), "action=DUNNO");
  EXPECT_EQ(b.ask(postfixRequest("a@example.org")), "action=DUNNO");
  EXPECT_EQ(c.ask(postfixRequest("a@example.org")), "action=DUNNO");
  auto refused = daemon.connect();
  EXPECT_TRUE(refused.closedByPeer(2s));
  EXPECT_TRUE(daemon.process->waitForLog("server.max_connections (3) reached"));
  // After the idle timeout the three are closed, and new connections are welcome again.
  EXPECT_TRUE(a.closedByPeer(4s));
  EXPECT_TRUE(b.closedByPeer(2s));
  EXPECT_TRUE(c.closedByPeer(2s));
  // The client sees the close a moment before the worker has released the slot, so a connection
  // made at once may still be refused; within a short while one must be answered.
  bool welcomed = false;
  for (const auto deadline = std::chrono::steady_clock::now() + 3s;
       !welcomed && std::chrono::steady_clock::now() < deadline;
       std::this_thread::sleep_for(50ms)) {
    auto later = daemon.connect();
    welcomed = later.ask(postfixRequest("a@example.org")) == "action=DUNNO";
  }
  EXPECT_TRUE(welcomed) << daemon.process->log();
}

TEST(Daemon, OperatorBlockAndClearThroughTheControlSocketSurviveKillNine) {
  TempDir dir;
  const auto state = (dir / "state").string();
  const std::vector<std::string> args{"--listen", "127.0.0.1:0", "--state-dir", state};
  {
    DaemonProcess process(args, dir / "first.log");
    ASSERT_TRUE(process.ready()) << process.log();
    const auto blocked = runSaslguard(
        {"accounts", "block", "Eve@Example.org", "--state-dir", state, "--reason", "phished"});
    EXPECT_EQ(blocked.exit_code, 0) << blocked.output;
    auto client = PolicyClient::connectTcp(process.port());
    ASSERT_TRUE(client.has_value());
    EXPECT_EQ(client->ask(postfixRequest("eve@example.org")),
              "action=REJECT 5.7.1 This account is blocked; contact your support");
    process.signal(SIGKILL);
    EXPECT_EQ(process.wait(), 128 + SIGKILL);
  }
  DaemonProcess process(args, dir / "second.log");
  ASSERT_TRUE(process.ready()) << process.log();
  auto client = PolicyClient::connectTcp(process.port());
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(client->ask(postfixRequest("eve@example.org")),
            "action=REJECT 5.7.1 This account is blocked; contact your support");
  const auto listed = runSaslguard({"accounts", "list", "--state-dir", state});
  EXPECT_NE(listed.output.find("eve@example.org"), std::string::npos) << listed.output;
  EXPECT_NE(listed.output.find("phished"), std::string::npos) << listed.output;
  const auto cleared = runSaslguard(
      {"accounts", "clear", "eve@example.org", "--state-dir", state, "--reason", "password reset"});
  EXPECT_EQ(cleared.exit_code, 0) << cleared.output;
  EXPECT_EQ(client->ask(postfixRequest("eve@example.org")), "action=DUNNO");
  const auto shown = runSaslguard({"accounts", "show", "eve@example.org", "--state-dir", state});
  EXPECT_NE(shown.output.find("not marked"), std::string::npos) << shown.output;
  EXPECT_NE(shown.output.find("password reset"), std::string::npos) << shown.output;
  EXPECT_NE(shown.output.find("clear by control:"), std::string::npos) << shown.output;
}

TEST(Daemon, AccountsCommandsWorkOnTheStateDirectoryOfAStoppedDaemon) {
  TempDir dir;
  const auto state = (dir / "state").string();
  auto blocked = runSaslguard({"accounts", "block", "frank@example.org", "--state-dir", state});
  // No state directory yet and no daemon: a clear error, not a crash.
  EXPECT_NE(blocked.exit_code, 0);
  EXPECT_NE(blocked.output.find("does not exist"), std::string::npos) << blocked.output;
  std::filesystem::create_directories(state);
  blocked = runSaslguard({"accounts", "block", "frank@example.org", "--state-dir", state});
  EXPECT_EQ(blocked.exit_code, 0) << blocked.output;
  const auto listed = runSaslguard({"accounts", "list", "--state-dir", state, "--json"});
  EXPECT_NE(listed.output.find(R"("account":"frank@example.org")"), std::string::npos)
      << listed.output;
  const auto cleared =
      runSaslguard({"accounts", "clear", "frank@example.org", "--state-dir", state});
  EXPECT_EQ(cleared.exit_code, 0) << cleared.output;
  const auto again = runSaslguard({"accounts", "clear", "frank@example.org", "--state-dir", state});
  EXPECT_EQ(again.exit_code, 3) << again.output;
}

TEST(Daemon, RefusesToStartOnABrokenConfigurationNamingLineAndKey) {
  TempDir dir;
  std::ofstream(dir / "bad.toml") << "[server]\nthreads = 2\nmax_connections = \"many\"\n";
  const auto result = runSaslguard({"serve", "--config", (dir / "bad.toml").string()});
  EXPECT_EQ(result.exit_code, 78);
  EXPECT_NE(result.output.find("bad.toml:3"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("server.max_connections"), std::string::npos) << result.output;
  const auto checked = runSaslguard({"check-config", "--config", (dir / "bad.toml").string()});
  EXPECT_EQ(checked.exit_code, 1);
  EXPECT_NE(checked.output.find("bad.toml:3"), std::string::npos) << checked.output;
}

TEST(Daemon, RefusesAPortThatIsTaken) {
  Daemon first;
  ASSERT_TRUE(first.process->ready());
  TempDir dir;
  const auto result =
      runSaslguard({"serve", "--listen", "127.0.0.1:" + std::to_string(first.process->port()),
                    "--state-dir", (dir / "state").string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("cannot start"), std::string::npos) << result.output;
}

TEST(Daemon, QueryCommandPrintsTheReply) {
  Daemon daemon({"--detectors-denylist-networks", "203.0.113.0/24"});
  ASSERT_TRUE(daemon.process->ready()) << daemon.process->log();
  const auto target = "127.0.0.1:" + std::to_string(daemon.process->port());
  auto result = runSaslguard({"query", "--target", target, "sasl_username=x@example.org",
                              "client_address=203.0.113.9", "protocol_state=RCPT"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.output, kReject + "\n");
  result = runSaslguard({"query", "--target", "127.0.0.1:1", "sasl_username=x"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("cannot connect"), std::string::npos);
}

TEST(Daemon, DropsPrivilegesAfterBindingAndHandsItTheStateDirectory) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  TempDir dir;
  std::filesystem::permissions(dir.path(), std::filesystem::perms(0755));
  const auto socket = (dir / "policy.sock").string();
  DaemonProcess process({"--listen", "unix:" + socket, "--state-dir", (dir / "state").string(),
                         "--server-user", "nobody", "--server-group", "nogroup"},
                        dir / "daemon.log");
  ASSERT_TRUE(process.ready()) << process.log();
  std::ifstream status("/proc/" + std::to_string(process.pid()) + "/status");
  std::string line, uid, gid;
  while (std::getline(status, line)) {
    if (line.rfind("Uid:", 0) == 0) uid = line;
    if (line.rfind("Gid:", 0) == 0) gid = line;
  }
  EXPECT_EQ(uid, "Uid:\t65534\t65534\t65534\t65534");
  EXPECT_EQ(gid, "Gid:\t65534\t65534\t65534\t65534");
  struct stat info {};
  ASSERT_EQ(::stat((dir / "state").c_str(), &info), 0);
  EXPECT_EQ(info.st_uid, 65534u);
  // It still answers, and a mark made through it is durable (the store is writable).
  const auto blocked =
      runSaslguard({"accounts", "block", "x@example.org", "--state-dir", (dir / "state").string()});
  EXPECT_EQ(blocked.exit_code, 0) << blocked.output;
  auto client = PolicyClient::connectUnix(socket);
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(client->ask(postfixRequest("x@example.org")),
            "action=REJECT 5.7.1 This account is blocked; contact your support");
  process.signal(SIGTERM);
  EXPECT_EQ(process.wait(), 0) << process.log();
}

TEST(Daemon, ListensOnIpv6AndLogsJsonLines) {
  TempDir dir;
  DaemonProcess process(
      {"--listen", "[::1]:0", "--listen", "127.0.0.1:0", "--state-dir", (dir / "state").string(),
       "--log-sink", "json", "--detectors-denylist-accounts", "bad@example.org"},
      dir / "daemon.log");
  if (!process.ready() && process.log().find("::1") != std::string::npos) {
    GTEST_SKIP() << "no IPv6 loopback here: " << process.log();
  }
  ASSERT_TRUE(process.ready()) << process.log();
  EXPECT_NE(process.log().find("listening on [::1]:"), std::string::npos) << process.log();
  auto client = PolicyClient::connectTcp(process.port());  // the IPv4 listener
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(client->ask(postfixRequest("bad@example.org")), kReject);
  ASSERT_TRUE(process.waitForLog(R"("msg":"decision")"));
  // Every line is one JSON object; the decision carries its fields, not a flattened string.
  std::istringstream lines(process.log());
  std::string line;
  int decisions = 0;
  while (std::getline(lines, line)) {
    EXPECT_EQ(line.front(), '{') << line;
    EXPECT_EQ(line.back(), '}') << line;
    if (line.find(R"("msg":"decision")") != std::string::npos) {
      ++decisions;
      EXPECT_NE(line.find(R"("account":"bad@example.org")"), std::string::npos) << line;
      EXPECT_NE(line.find(R"("action":"REJECT")"), std::string::npos) << line;
      EXPECT_NE(line.find(R"("level":"info")"), std::string::npos) << line;
    }
  }
  EXPECT_EQ(decisions, 1);
}

}  // namespace
}  // namespace saslguard::testing
