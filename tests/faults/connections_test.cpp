// connections_test.cpp — many and slow clients: 10,000 Postfix-style connections held open at
// once (each answered, then asked again), with a newcomer still answered quickly; and clients
// dripping a request one byte per second on the policy port and the admin API, which neither
// starve the others nor keep their connection past the idle and read timeouts.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>

#include "faults/faults_support.hpp"
#include "support/daemon_process.hpp"
#include "support/http_client.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::testing {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

constexpr std::size_t kConnections = 10000;

double secondsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

// The soft "Max open files" of a process, from /proc/PID/limits.
long openFileLimit(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Max open files", 0) == 0) return std::strtol(line.c_str() + 14, nullptr, 10);
  }
  return 0;
}

TEST(Connections, TenThousandHeldOpenAreAllAnsweredAndANewcomerStillQuickly) {
  // The daemon starts with a soft limit of 1024 (as under many init systems) and must raise it
  // itself; this process needs 10,000 descriptors of its own.
  const auto limit = raiseOpenFileLimit();
  if (limit < kConnections + 1000) {
    GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << limit << " is below what the test needs";
  }
  TempDir dir;
  const auto config = (dir / "saslguard.toml").string();
  std::ofstream(config) << "[server]\nmax_connections = " << kConnections + 2000
                        << "\n\n[admin]\nenabled = true\nlisten = \"127.0.0.1:0\"\n\n"
                        << "[eventlog]\nenabled = false\n";
  rlimit low{};
  ::getrlimit(RLIMIT_NOFILE, &low);
  low.rlim_cur = 1024;
  ::setrlimit(RLIMIT_NOFILE, &low);
  DaemonProcess daemon(
      {"--config", config, "--listen", "127.0.0.1:0", "--state-dir", (dir / "state").string()},
      dir / "daemon.log");
  raiseOpenFileLimit();
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  EXPECT_GE(openFileLimit(daemon.pid()), static_cast<long>(kConnections + 2000))
      << "the daemon did not raise its open file limit";
  const auto rss_before = residentKib(daemon.pid());

  // Each connection: connect, one request, its answer; then kept.
  const auto opening = SteadyClock::now();
  std::vector<PolicyClient> held;
  held.reserve(kConnections);
  std::size_t unanswered = 0;
  for (std::size_t i = 0; i < kConnections; ++i) {
    auto client = PolicyClient::connectTcp(daemon.port());
    ASSERT_TRUE(client) << "connection " << i << " refused: " << std::strerror(errno);
    const auto reply = client->ask(postfixRequest("user" + std::to_string(i) + "@example.org"));
    if (reply != "action=DUNNO") ++unanswered;
    held.push_back(std::move(*client));
  }
  const auto open_s = secondsSince(opening);
  EXPECT_EQ(unanswered, 0u);
  std::this_thread::sleep_for(200ms);
  const auto rss_held = residentKib(daemon.pid());
  const auto descriptors = openDescriptors(daemon.pid());
  const auto metrics = scrapeMetrics(daemon.adminPort());
  EXPECT_GE(series(metrics, "saslguard_connections_open"), static_cast<double>(kConnections));
  EXPECT_EQ(series(metrics, "saslguard_connections_refused_total"), 0);

  // A newcomer while all of them are open: answered as quickly as on an idle daemon.
  Probe newcomer(
      daemon.port(),
      [](int i) { return postfixRequest("newcomer" + std::to_string(i % 10) + "@example.org"); },
      5ms);
  std::this_thread::sleep_for(2s);
  newcomer.stop();
  const auto newcomer_summary = summarize(newcomer.samples(), 0ms, newcomer.now());

  // Every held connection is still open and answers again.
  const auto again = SteadyClock::now();
  std::size_t second_unanswered = 0;
  for (std::size_t i = 0; i < held.size(); ++i) {
    if (held[i].ask(postfixRequest("user" + std::to_string(i) + "@example.org")) != "action=DUNNO")
      ++second_unanswered;
  }
  const auto again_s = secondsSince(again);
  EXPECT_EQ(second_unanswered, 0u);

  const auto closing = SteadyClock::now();
  held.clear();
  bool all_closed = false;
  while (secondsSince(closing) < 20) {
    if (series(scrapeMetrics(daemon.adminPort()), "saslguard_connections_open") == 0) {
      all_closed = true;
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(all_closed);
  const auto rss_after = residentKib(daemon.pid());

  std::cout << "[10k] daemon open file limit " << openFileLimit(daemon.pid())
            << " (started with 1024)\n[10k] " << kConnections
            << " connections opened and answered in " << open_s << " s; daemon descriptors "
            << descriptors << "\n[10k] RSS " << rss_before / 1024.0 << " MiB before, "
            << rss_held / 1024.0 << " MiB with " << kConnections << " open ("
            << (rss_held - rss_before) * 1024.0 / static_cast<double>(kConnections)
            << " bytes each), " << rss_after / 1024.0
            << " MiB after they closed\n[10k] newcomer: " << describe(newcomer_summary)
            << "\n[10k] second request on every held connection: " << again_s
            << " s; all closed seen in " << secondsSince(closing) << " s" << std::endl;
  EXPECT_EQ(newcomer_summary.unanswered, 0u);
  EXPECT_GT(newcomer_summary.count, 50u);
  EXPECT_LT(newcomer_summary.max_ms, 500);
  EXPECT_TRUE(daemon.running());
}

int connectTo(unsigned short port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A client sending `text` one byte per second; closed() once the server has closed on it.
struct Dripper {
  int fd = -1;
  std::string text;
  std::size_t sent = 0;
  SteadyClock::time_point last_sent{};
  std::optional<milliseconds> closed_after;
};

// True when the peer has closed (EOF or reset); what it sent before (a 408) is read and dropped.
bool peerClosed(int fd) {
  char buffer[4096];
  for (;;) {
    const auto n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n > 0) continue;
    if (n == 0) return true;
    return errno != EAGAIN && errno != EWOULDBLOCK;
  }
}

TEST(Connections, SlowDripClientsStarveNobodyAndAreClosedByTheTimeouts) {
  TempDir dir;
  constexpr int kIdleTimeoutS = 3;
  constexpr milliseconds kReadTimeout{2000};
  const auto config = (dir / "saslguard.toml").string();
  std::ofstream(config) << "[server]\nidle_timeout_s = " << kIdleTimeoutS
                        << "\n\n[admin]\nenabled = true\nlisten = \"127.0.0.1:0\"\n"
                        << "read_timeout_ms = " << kReadTimeout.count()
                        << "\nidle_timeout_ms = " << kReadTimeout.count()
                        << "\n\n[eventlog]\nenabled = false\n";
  DaemonProcess daemon(
      {"--config", config, "--listen", "127.0.0.1:0", "--state-dir", (dir / "state").string()},
      dir / "daemon.log");
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  const auto admin = daemon.adminPort();

  constexpr int kPolicyDrippers = 50;
  constexpr int kAdminDrippers = 20;  // of admin.max_connections (64)
  std::vector<Dripper> policy(kPolicyDrippers), api(kAdminDrippers);
  for (auto& d : policy) {
    d.fd = connectTo(daemon.port());
    d.text = postfixRequest("dripper@example.org");
    ASSERT_GE(d.fd, 0);
  }
  for (auto& d : api) {
    d.fd = connectTo(admin);
    d.text = "GET /api/v1/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    ASSERT_GE(d.fd, 0);
  }
  const auto started = SteadyClock::now();
  std::atomic<bool> stopping{false};
  // Every 0.1 s: has the server closed on it? Every 1 s: its next byte.
  std::thread drip([&] {
    while (!stopping) {
      const auto now = SteadyClock::now();
      for (auto* group : {&policy, &api}) {
        for (auto& d : *group) {
          if (d.closed_after) continue;
          bool closed = peerClosed(d.fd);
          if (!closed && d.sent < d.text.size() && now - d.last_sent >= 1s) {
            closed = ::send(d.fd, d.text.data() + d.sent, 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
                     errno != EAGAIN;
            ++d.sent;
            d.last_sent = now;
          }
          if (closed) d.closed_after = std::chrono::duration_cast<milliseconds>(now - started);
        }
      }
      std::this_thread::sleep_for(100ms);
    }
  });

  // Meanwhile ordinary clients: a policy connection and API requests.
  Probe probe(
      daemon.port(),
      [](int i) { return postfixRequest("ordinary" + std::to_string(i % 5) + "@example.org"); },
      20ms);
  std::vector<double> api_ms;
  std::size_t api_failures = 0;
  const auto deadline = started + std::chrono::seconds(kIdleTimeoutS + 4);
  while (SteadyClock::now() < deadline) {
    const auto asked = SteadyClock::now();
    const auto response = httpGet(admin, "/livez");
    api_ms.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - asked).count());
    if (response.status != 200) ++api_failures;
    std::this_thread::sleep_for(50ms);
  }
  probe.stop();
  stopping = true;
  drip.join();
  const auto metrics = scrapeMetrics(admin);

  const auto worst = [](const std::vector<Dripper>& group) {
    milliseconds most{0};
    std::size_t open = 0;
    for (const auto& d : group) {
      if (!d.closed_after) {
        ++open;
      } else {
        most = std::max(most, *d.closed_after);
      }
    }
    return std::make_pair(most, open);
  };
  const auto [policy_worst, policy_open] = worst(policy);
  const auto [api_worst, api_open] = worst(api);
  const auto ordinary = summarize(probe.samples(), 0ms, probe.now());
  std::sort(api_ms.begin(), api_ms.end());
  std::cout << "[drip] " << kPolicyDrippers << " policy drippers: last closed after "
            << policy_worst.count() << " ms (idle_timeout_s " << kIdleTimeoutS << "), still open "
            << policy_open << "\n[drip] " << kAdminDrippers << " API drippers: last closed after "
            << api_worst.count() << " ms (read_timeout_ms " << kReadTimeout.count()
            << "), still open " << api_open
            << "\n[drip] ordinary policy client: " << describe(ordinary)
            << "\n[drip] ordinary API client: " << api_ms.size() << " GET /livez, p50 "
            << api_ms[api_ms.size() / 2] << " ms, max " << api_ms.back() << " ms, failed "
            << api_failures << "\n[drip] connections_idle_closed_total "
            << series(metrics, "saslguard_connections_idle_closed_total") << std::endl;
  for (auto* group : {&policy, &api}) {
    for (auto& d : *group) ::close(d.fd);
  }

  EXPECT_EQ(policy_open, 0u) << "a dripping policy client outlived the idle timeout";
  EXPECT_EQ(api_open, 0u) << "a dripping API client outlived the read timeout";
  // The idle sweep runs every second.
  EXPECT_LE(policy_worst, std::chrono::seconds(kIdleTimeoutS) + 1s + 1000ms);
  EXPECT_LE(api_worst, kReadTimeout + 1000ms);
  EXPECT_GE(series(metrics, "saslguard_connections_idle_closed_total"), kPolicyDrippers);
  EXPECT_EQ(ordinary.unanswered, 0u);
  EXPECT_GT(ordinary.count, 50u);
  EXPECT_LT(ordinary.max_ms, 500);
  EXPECT_EQ(api_failures, 0u);
  EXPECT_LT(api_ms.back(), 500);
}

}  // namespace
}  // namespace saslguard::testing
