// dependencies_test.cpp — the daemon under load (saslguard-load, closed loop) while each backend
// it depends on is killed (SIGKILL by its PID) and frozen (SIGSTOP), then restarted or resumed:
// every reply within the backend's timeout plus a margin, the configured failure action answered,
// errors counted in /metrics and logged, and requests served again without restarting saslguard.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <iostream>

#include "enrich/dns.hpp"
#include "faults/faults_support.hpp"
#include "support/daemon_process.hpp"
#include "support/rbldnsd.hpp"
#include "support/slapd.hpp"
#include "support/sql_servers.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::testing {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

// Bounds that hold on a loaded 2-core machine: what the daemon promises plus this margin.
constexpr milliseconds kMargin{500};
// How long each fault lasts.
constexpr milliseconds kFaultLength{2000};

struct FaultSetup {
  TempDir dir;
  std::unique_ptr<DaemonProcess> start(const std::string& options) {
    const auto config = (dir / "saslguard.toml").string();
    std::ofstream(config) << "[admin]\nenabled = true\nlisten = \"127.0.0.1:0\"\n\n"
                          << "[detectors.quota]\nwindows = [\"24h:999999999\"]\n\n"
                          << options;
    return std::make_unique<DaemonProcess>(
        std::vector<std::string>{"--config", config, "--listen", "127.0.0.1:0", "--state-dir",
                                 (dir / "state").string()},
        dir / "daemon.log");
  }
  // Closed loop on three connections (Postfix's smtpd processes) for `seconds`.
  std::unique_ptr<LoadGenerator> load(unsigned short port, double seconds, const std::string& name,
                                      std::vector<std::string> extra = {}) {
    std::vector<std::string> arguments{"--target",
                                       "127.0.0.1:" + std::to_string(port),
                                       "--connections",
                                       "3",
                                       "--threads",
                                       "1",
                                       "--duration",
                                       std::to_string(seconds),
                                       "--timeout-ms",
                                       "10000",
                                       "--accounts",
                                       "2000",
                                       "--compromised-share",
                                       "0",
                                       "--quiet"};
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    return std::make_unique<LoadGenerator>(arguments, dir / (name + ".out"));
  }
};

struct FaultActions {
  std::function<void()> kill, restart, freeze, resume;
};

struct FaultTimes {
  milliseconds killed, restarted, kill_recovered;
  milliseconds frozen, resumed, freeze_recovered;
};

// Healthy, killed for kFaultLength, restarted (waits until the probe is answered as when healthy),
// healthy a moment, frozen for kFaultLength, resumed (waits again). Times on the probe's clock.
FaultTimes injectFaults(Probe& probe, const FaultActions& actions,
                        const std::function<bool(const std::string&)>& healthy) {
  FaultTimes times{};
  std::this_thread::sleep_for(1000ms);
  times.killed = probe.now();
  actions.kill();
  std::this_thread::sleep_for(kFaultLength);
  times.restarted = probe.now();
  actions.restart();
  EXPECT_TRUE(probe.waitFor(times.restarted, healthy, 15s)) << "no recovery after the restart";
  if (auto first = probe.firstAfter(times.restarted, healthy)) {
    times.kill_recovered = first->at + first->latency - times.restarted;
  }
  std::this_thread::sleep_for(500ms);
  times.frozen = probe.now();
  actions.freeze();
  std::this_thread::sleep_for(kFaultLength);
  times.resumed = probe.now();
  actions.resume();
  EXPECT_TRUE(probe.waitFor(times.resumed, healthy, 15s)) << "no recovery after SIGCONT";
  if (auto first = probe.firstAfter(times.resumed, healthy)) {
    times.freeze_recovered = first->at + first->latency - times.resumed;
  }
  std::this_thread::sleep_for(500ms);
  return times;
}

void report(const std::string& backend, const Probe& probe, const FaultTimes& t,
            const Figures& load, const Figures& before, const Figures& after) {
  const auto samples = probe.samples();
  std::cout << "[" << backend
            << "] probe healthy:   " << describe(summarize(samples, 0ms, t.killed)) << "\n["
            << backend
            << "] probe killed:    " << describe(summarize(samples, t.killed, t.restarted)) << "\n["
            << backend << "] recovery after restart: " << t.kill_recovered.count() << " ms\n["
            << backend << "] probe frozen:    " << describe(summarize(samples, t.frozen, t.resumed))
            << "\n[" << backend << "] recovery after SIGCONT: " << t.freeze_recovered.count()
            << " ms\n[" << backend << "] load: requests " << series(load, "requests") << ", rps "
            << series(load, "rps") << ", p50 " << series(load, "p50_us") / 1000 << " ms, p99 "
            << series(load, "p99_us") / 1000 << " ms, max " << series(load, "max_us") / 1000
            << " ms, dunno " << series(load, "dunno") << ", defer " << series(load, "defer")
            << ", reject " << series(load, "reject") << ", errors "
            << series(load, "err_connect") + series(load, "err_closed") +
                   series(load, "err_timeout") + series(load, "err_malformed")
            << "\n[" << backend << "] metrics: backend_errors_total "
            << series(after, "saslguard_backend_errors_total{backend=\"" + backend + "\"}") -
                   series(before, "saslguard_backend_errors_total{backend=\"" + backend + "\"}")
            << ", backend_timeouts_total "
            << series(after, "saslguard_backend_timeouts_total{backend=\"" + backend + "\"}") -
                   series(before, "saslguard_backend_timeouts_total{backend=\"" + backend + "\"}")
            << std::endl;
}

// No reply took longer than `bound`, none was lost, and the daemon still runs.
void expectBounded(const Probe& probe, const Figures& load, milliseconds bound,
                   DaemonProcess& daemon) {
  for (const auto& sample : probe.samples()) {
    EXPECT_FALSE(sample.reply.empty()) << "no reply at " << sample.at.count() << " ms";
    EXPECT_LE(sample.latency, bound) << "reply at " << sample.at.count() << " ms";
  }
  ASSERT_FALSE(load.empty()) << "saslguard-load printed no RESULT line";
  EXPECT_GT(series(load, "requests"), 100);
  EXPECT_LE(series(load, "max_us"), 1000.0 * static_cast<double>(bound.count()));
  EXPECT_EQ(series(load, "err_connect"), 0);
  EXPECT_EQ(series(load, "err_closed"), 0);
  EXPECT_EQ(series(load, "err_timeout"), 0);
  EXPECT_EQ(series(load, "err_malformed"), 0);
  EXPECT_TRUE(daemon.running()) << daemon.log();
}

bool isDunno(const std::string& reply) {
  return reply == "action=DUNNO";
}

TEST(DependencyFaults, LdapKilledAndFrozenAnswersDeferWithinItsTimeoutAndRecovers) {
  Slapd slapd;
  FaultSetup setup;
  constexpr milliseconds kTimeout{500};
  // No cache: every request searches, so a fault shows at once.
  auto daemon = setup.start(
      "[ldap]\nenabled = true\nuris = [\"" + slapd.uri() +
      "\"]\nbase_dn = \"dc=example,dc=test\"\ntimeout_ms = " + std::to_string(kTimeout.count()) +
      "\ncache_ttl_s = 0\nnegative_cache_ttl_s = 0\nfailure_action = \"DEFER\"\n"
      "\n[eventlog]\nenabled = false\n");
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  const auto before = scrapeMetrics(daemon->adminPort());

  Probe probe(daemon->port(), [](int i) {
    return withAttribute(postfixRequest("alice.alias@example.test"), "instance",
                         "ldap." + std::to_string(i));
  });
  auto load = setup.load(daemon->port(), 9.5, "ldap-load");
  const auto times = injectFaults(probe,
                                  {[&] { ::kill(slapd.pid(), SIGKILL); },
                                   // stop() reaps the killed process: start() does nothing
                                   // while it still holds a PID.
                                   [&] {
                                     slapd.stop();
                                     slapd.start();
                                   },
                                   [&] { slapd.pause(); }, [&] { slapd.resume(); }},
                                  isDunno);
  const auto result = load->wait();
  probe.stop();
  const auto after = scrapeMetrics(daemon->adminPort());
  report("ldap", probe, times, result, before, after);

  expectBounded(probe, result, kTimeout + kMargin, *daemon);
  const auto samples = probe.samples();
  EXPECT_EQ(summarize(samples, 0ms, times.killed).replies["DUNNO"],
            summarize(samples, 0ms, times.killed).count);
  // Fail closed while the directory is down or frozen: DEFER, never DUNNO.
  auto killed = summarize(samples, times.killed + 100ms, times.restarted);
  EXPECT_GT(killed.replies["DEFER"], 0u);
  EXPECT_EQ(killed.replies["DUNNO"], 0u);
  // Requests sent within a timeout of SIGCONT may be answered by the resumed server.
  auto frozen = summarize(samples, times.frozen + kTimeout, times.resumed - kTimeout);
  EXPECT_GT(frozen.replies["DEFER"], 0u);
  EXPECT_EQ(frozen.replies["DUNNO"], 0u);
  EXPECT_GT(series(result, "defer"), 0);
  // The load's accounts are not in the directory: kept as they are (DUNNO) while slapd answers.
  EXPECT_GT(series(result, "dunno"), 0);
  // Reconnected by itself: slapd's start plus at most the longest backoff (1 s).
  EXPECT_LT(times.kill_recovered, 3000ms);
  EXPECT_LT(times.freeze_recovered, 1000ms);
  EXPECT_GT(series(after, "saslguard_backend_errors_total{backend=\"ldap\"}"),
            series(before, "saslguard_backend_errors_total{backend=\"ldap\"}"));
  EXPECT_NE(daemon->log().find("LDAP"), std::string::npos) << daemon->log();
}

const std::string kKey = "testkey";
const std::string kListedIp = "192.0.2.66";

// The reputation detector asks two zones (client address, then recipient): the bound is the
// budget of one lookup, since the second fails at once while the server stays silent.
TEST(DependencyFaults, DnsKilledAndFrozenAnswersNotListedWithinItsTimeoutAndRecovers) {
  Rbldnsd dns({{kKey + ".authbl.mail.abusix.zone", "ip4set", "authbl",
                "$TTL 60\n:127.0.0.4:listed\n127.0.0.2\n" + kListedIp + "\n"},
               {kKey + ".authbl-rcpt.mail.abusix.zone", "dnset", "rcpt", "$TTL 60\n"}});
  FaultSetup setup;
  constexpr milliseconds kTimeout{300};
  constexpr int kTries = 2;
  auto daemon = setup.start(
      "[dns]\nservers = [\"" + dns.server() + "\"]\ntimeout_ms = " +
      std::to_string(kTimeout.count()) + "\ntries = " + std::to_string(kTries) +
      "\nmax_ttl_s = 0\nnegative_ttl_s = 0\n\n[detectors.reputation]\nenabled = true\npreset = "
      "\"abusix\"\napi_key = \"" +
      kKey + "\"\naction = \"REJECT\"\n\n[eventlog]\nenabled = false\n");
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  const auto before = scrapeMetrics(daemon->adminPort());

  // A new account from a listed address each time: REJECT while DNS answers, DUNNO (not listed,
  // dns_failure_action) while it does not.
  Probe probe(daemon->port(), [](int i) {
    return withAttribute(postfixRequest("probe" + std::to_string(i) + "@example.org", kListedIp),
                         "instance", "dns." + std::to_string(i));
  });
  auto load = setup.load(daemon->port(), 9.5, "dns-load");
  const auto times =
      injectFaults(probe,
                   {[&] { ::kill(dns.pid(), SIGKILL); }, [&] { dns.restart(); },
                    [&] { ::kill(dns.pid(), SIGSTOP); }, [&] { ::kill(dns.pid(), SIGCONT); }},
                   [](const std::string& reply) { return reply.rfind("action=REJECT", 0) == 0; });
  const auto result = load->wait();
  probe.stop();
  const auto after = scrapeMetrics(daemon->adminPort());
  report("dns", probe, times, result, before, after);

  expectBounded(probe, result, kTimeout * kTries + kMargin, *daemon);
  const auto samples = probe.samples();
  auto killed = summarize(samples, times.killed + 100ms, times.restarted);
  EXPECT_GT(killed.replies["DUNNO"], 0u);
  EXPECT_EQ(killed.replies["REJECT"], 0u);
  auto frozen =
      summarize(samples, times.frozen + kTimeout * kTries, times.resumed - kTimeout * kTries);
  EXPECT_GT(frozen.replies["DUNNO"], 0u);
  EXPECT_EQ(frozen.replies["REJECT"], 0u);
  EXPECT_GT(series(after, "saslguard_backend_timeouts_total{backend=\"dns\"}"),
            series(before, "saslguard_backend_timeouts_total{backend=\"dns\"}"));
  EXPECT_GT(series(after, "saslguard_reputation_failures_total"),
            series(before, "saslguard_reputation_failures_total"));
  EXPECT_LT(times.kill_recovered, 3000ms);
  EXPECT_LT(times.freeze_recovered, 1000ms);
}

// Event log rows: written + dropped + still queued == counted messages (END-OF-MESSAGE replies).
double eventlogBalance(const Figures& metrics) {
  double messages = 0;
  for (const char* action : {"dunno", "hold", "defer", "reject"}) {
    messages += series(metrics, std::string("saslguard_requests_total{protocol_state=\"END-OF-"
                                            "MESSAGE\",action=\"") +
                                    action + "\"}");
  }
  return messages - series(metrics, "saslguard_eventlog_rows_written_total") -
         series(metrics, "saslguard_eventlog_rows_dropped_total") -
         series(metrics, "saslguard_queue_depth{queue=\"eventlog\"}");
}

TEST(DependencyFaults, EventLogDatabaseKilledAndFrozenQueuesOrDropsRowsAndCatchesUp) {
  if (!MariadbServer::available()) GTEST_SKIP() << "mariadb-server is not installed";
  MariadbServer mariadb;
  ASSERT_TRUE(mariadb.start()) << mariadb.error();
  FaultSetup setup;
  std::ofstream(setup.dir / "db.password") << mariadb.password() << "\n";
  constexpr int kQueueRows = 3000;
  auto daemon =
      setup.start("[eventlog]\nurl = \"" + mariadb.urlWithoutPassword() + "\"\npassword_file = \"" +
                  (setup.dir / "db.password").string() +
                  "\"\nqueue_rows = " + std::to_string(kQueueRows) + "\nflush_interval_ms = 100\n");
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  const auto admin = daemon->adminPort();
  const auto waitMetric = [&](const std::function<bool(const Figures&)>& done,
                              milliseconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    while (SteadyClock::now() < deadline) {
      if (done(scrapeMetrics(admin))) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  };
  ASSERT_TRUE(
      waitMetric([](const Figures& m) { return series(m, "saslguard_eventlog_connected"); }, 10s));
  const auto rowsInDatabase = [&] {
    const auto out = mariadb.sql("SELECT COUNT(*) FROM events");
    return out.empty() ? -1.0 : std::stod(out);
  };

  // 1. Killed under a paced load (300 requests/s, ~100 rows/s): rows wait in the queue.
  Probe probe(daemon->port(), [](int i) {
    return withAttribute(postfixRequest("prober@example.org"), "instance",
                         "sql." + std::to_string(i));
  });
  auto paced = setup.load(daemon->port(), 6, "sql-kill-load", {"--rate", "300"});
  std::this_thread::sleep_for(1000ms);
  mariadb.kill();
  std::this_thread::sleep_for(kFaultLength);
  const auto during_kill = scrapeMetrics(admin);
  const auto restarted_at = SteadyClock::now();
  ASSERT_TRUE(mariadb.start()) << mariadb.error();
  const auto kill_recovered = waitMetric(
      [](const Figures& m) {
        return series(m, "saslguard_eventlog_connected") == 1 &&
               series(m, "saslguard_queue_depth{queue=\"eventlog\"}") == 0;
      },
      20s);
  const auto kill_recovery =
      std::chrono::duration_cast<milliseconds>(SteadyClock::now() - restarted_at);
  const auto paced_result = paced->wait();
  EXPECT_TRUE(kill_recovered);

  // 2. Frozen under the full closed loop: the queue fills up, further rows are dropped and
  // counted, nothing on the request path waits.
  auto full = setup.load(daemon->port(), 5, "sql-freeze-load");
  std::this_thread::sleep_for(500ms);
  const auto dropped_before_freeze =
      series(scrapeMetrics(admin), "saslguard_eventlog_rows_dropped_total");
  ::kill(mariadb.pid(), SIGSTOP);
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  const auto during_freeze = scrapeMetrics(admin);
  const auto resumed_at = SteadyClock::now();
  ::kill(mariadb.pid(), SIGCONT);
  const auto full_result = full->wait();
  const auto freeze_recovered = waitMetric(
      [](const Figures& m) { return series(m, "saslguard_queue_depth{queue=\"eventlog\"}") == 0; },
      20s);
  const auto freeze_recovery =
      std::chrono::duration_cast<milliseconds>(SteadyClock::now() - resumed_at);
  EXPECT_TRUE(freeze_recovered);
  probe.stop();
  std::this_thread::sleep_for(300ms);  // the last batch's commit
  const auto after = scrapeMetrics(admin);
  const auto rows = rowsInDatabase();

  const auto samples = probe.samples();
  std::cout << "[eventlog] probe: " << describe(summarize(samples, 0ms, probe.now()))
            << "\n[eventlog] killed 2 s under 300 req/s: queue depth "
            << series(during_kill, "saslguard_queue_depth{queue=\"eventlog\"}") << ", write errors "
            << series(during_kill, "saslguard_eventlog_write_errors_total") << ", caught up "
            << kill_recovery.count() << " ms after the restart"
            << "\n[eventlog] paced load: max " << series(paced_result, "max_us") / 1000
            << " ms, p99 " << series(paced_result, "p99_us") / 1000 << " ms"
            << "\n[eventlog] frozen 3 s under closed loop: queue depth "
            << series(during_freeze, "saslguard_queue_depth{queue=\"eventlog\"}") << " (max "
            << kQueueRows << "), dropped "
            << series(after, "saslguard_eventlog_rows_dropped_total") - dropped_before_freeze
            << ", caught up " << freeze_recovery.count() << " ms after SIGCONT"
            << "\n[eventlog] full load: " << series(full_result, "rps") << " req/s, max "
            << series(full_result, "max_us") / 1000 << " ms, p99 "
            << series(full_result, "p99_us") / 1000 << " ms"
            << "\n[eventlog] rows: written "
            << series(after, "saslguard_eventlog_rows_written_total") << ", in the database "
            << rows << ", dropped " << series(after, "saslguard_eventlog_rows_dropped_total")
            << ", backend_errors_total "
            << series(after, "saslguard_backend_errors_total{backend=\"eventlog\"}") << std::endl;

  // The request path never waits for the database: bounded like a healthy daemon.
  expectBounded(probe, paced_result, 1000ms, *daemon);
  expectBounded(probe, full_result, 1000ms, *daemon);
  EXPECT_GT(series(during_kill, "saslguard_queue_depth{queue=\"eventlog\"}"), 0);
  EXPECT_GT(series(during_kill, "saslguard_eventlog_write_errors_total"), 0);
  EXPECT_EQ(series(during_kill, "saslguard_eventlog_rows_dropped_total"), 0)
      << "the queue had room for the whole outage";
  EXPECT_LE(series(during_freeze, "saslguard_queue_depth{queue=\"eventlog\"}"), kQueueRows);
  EXPECT_GT(series(after, "saslguard_eventlog_rows_dropped_total"), dropped_before_freeze);
  EXPECT_EQ(eventlogBalance(after), 0) << "rows neither written, dropped nor queued";
  // Every row counted as written is in the table (a batch cut off by the kill is written again
  // after the reconnect, so the table may hold a batch more than the counter, never fewer).
  EXPECT_GE(rows, series(after, "saslguard_eventlog_rows_written_total"));
  EXPECT_NE(daemon->log().find("event log"), std::string::npos);
}

}  // namespace
}  // namespace saslguard::testing
