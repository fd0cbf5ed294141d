// reputation_test.cpp — black box: the reputation detector in the built daemon against a real
// rbldnsd serving Abusix-shaped zones under an API-key label: listings of the client address
// and of the hashed recipient mark the account, the registry answers afterwards without a
// lookup, the hook runs, the self-test guards the start, and DNS failures answer by the
// configured failure action; on a Redis store the same, with DNS and Redis awaited at once.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <map>

#include "enrich/dns.hpp"
#include "support/daemon_process.hpp"
#include "support/rbldnsd.hpp"
#include "support/redis.hpp"
#include "support/smtp_sink.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::testing {
namespace {

using namespace std::chrono_literals;

const std::string kKey = "testkey";
const std::string kListedIp = "192.0.2.66";
const std::string kCleanIp = "198.51.100.1";
const std::string kOutsideIp = "203.0.113.9";  // the zone answers 10.0.0.1 for it
const std::string kBadRecipient = "victim@example.net";

std::vector<RbldnsdZone> abusixZones() {
  return {
      {kKey + ".authbl.mail.abusix.zone", "ip4set", "authbl",
       "$TTL 60\n:127.0.0.4:listed\n127.0.0.2\n" + kListedIp + "\n" + kOutsideIp +
           " :10.0.0.1:broken\n"},
      {kKey + ".authbl-rcpt.mail.abusix.zone", "dnset", "rcpt",
       "$TTL 60\n:127.0.0.2:listed\n" + enrich::sha1Hex(kBadRecipient) + "\n"},
  };
}

// A RCPT request of one message (`instance`) with its recipient.
std::string rcpt(const std::string& account, const std::string& client,
                 const std::string& recipient, const std::string& instance) {
  auto request = postfixRequest(account, client, "RCPT");
  const auto replace = [&](const std::string& from, const std::string& to) {
    const auto at = request.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    request.replace(at, from.size(), to);
  };
  replace("recipient=someone@remote.example\n", "recipient=" + recipient + "\n");
  replace("instance=666a.6b0259ed.7d0d7.0\n", "instance=" + instance + "\n");
  return request;
}

std::uint64_t counter(const std::string& state, const std::string& name) {
  const auto stats = runSaslguard({"stats", "--state-dir", state});
  const auto at = stats.output.find("\n" + name + " ");
  if (at == std::string::npos) return ~0ull;
  return std::stoull(stats.output.substr(at + name.size() + 2));
}

struct ReputationSetup {
  TempDir dir;
  std::string state = (dir / "state").string();
  std::string hook_output = (dir / "hook.env").string();
  std::string hook = (dir / "hook.sh").string();
  std::string dns_timing = "timeout_ms = 300\ntries = 2\n";
  int starts = 0;

  std::unique_ptr<DaemonProcess> start(const std::string& dns_server, const std::string& extra,
                                       const std::string& notify_extra = "") {
    std::ofstream(hook) << "#!/bin/sh\nenv > \"$1.tmp\" && mv \"$1.tmp\" \"$1\"\n";
    ::chmod(hook.c_str(), 0755);
    const auto config = (dir / "saslguard.toml").string();
    std::ofstream(config) << "[dns]\nservers = [\"" << dns_server << "\"]\n"
                          << dns_timing << "\n[notify]\nhook_command = [\"" << hook << "\", \""
                          << hook_output << "\"]\n"
                          << notify_extra
                          << "\n[detectors.reputation]\nenabled = true\npreset = "
                             "\"abusix\"\napi_key = \""
                          << kKey << "\"\n"
                          << extra;
    return std::make_unique<DaemonProcess>(
        std::vector<std::string>{"--config", config, "--listen", "127.0.0.1:0", "--state-dir",
                                 state},
        dir / ("daemon" + std::to_string(++starts) + ".log"));
  }

  // The hook's environment once it has run (empty after the timeout).
  std::map<std::string, std::string> hookEnvironment(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(hook_output);
      if (in) {
        std::map<std::string, std::string> env;
        for (std::string line; std::getline(in, line);) {
          const auto equals = line.find('=');
          if (equals != std::string::npos) env[line.substr(0, equals)] = line.substr(equals + 1);
        }
        return env;
      }
      std::this_thread::sleep_for(20ms);
    }
    return {};
  }
};

TEST(ReputationDaemon, AListedClientAddressMarksTheAccountAndTheRegistryAnswersAfterwards) {
  Rbldnsd dns(abusixZones());
  ReputationSetup setup;
  auto daemon = setup.start(dns.server(), "action = \"REJECT\"\n");
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  auto client = PolicyClient::connectTcp(daemon->port());
  ASSERT_TRUE(client);

  EXPECT_EQ(client->ask(rcpt("alice@example.org", kCleanIp, "bob@example.com", "m1")),
            "action=DUNNO");
  EXPECT_EQ(client->ask(rcpt("eve@example.org", kListedIp, "bob@example.com", "m2")),
            "action=REJECT 5.7.1 Sending from this account is blocked; contact your support");

  // The mark carries its evidence, and the hook ran with the request and the verdict.
  const auto shown =
      runSaslguard({"accounts", "show", "eve@example.org", "--state-dir", setup.state});
  EXPECT_NE(shown.output.find("authbl.mail.abusix.zone"), std::string::npos) << shown.output;
  EXPECT_NE(shown.output.find("127.0.0.4"), std::string::npos) << shown.output;
  EXPECT_EQ(shown.output.find(kKey), std::string::npos) << "the API key leaked: " << shown.output;
  auto env = setup.hookEnvironment();
  EXPECT_EQ(env["SASLGUARD_ACCOUNT"], "eve@example.org");
  EXPECT_EQ(env["SASLGUARD_DETECTOR"], "reputation");
  EXPECT_EQ(env["client_address"], kListedIp);
  EXPECT_EQ(env["sasl_username"], "eve@example.org");

  // From a clean address the registry answers, with no lookup.
  const auto lookups = counter(setup.state, "reputation_lookups_total");
  EXPECT_EQ(client->ask(rcpt("eve@example.org", kCleanIp, "bob@example.com", "m3")),
            "action=REJECT 5.7.1 This account is blocked; contact your support");
  EXPECT_EQ(counter(setup.state, "reputation_lookups_total"), lookups);

  // Cleared by an operator: answered DUNNO again from a clean address.
  const auto cleared = runSaslguard({"accounts", "clear", "eve@example.org", "--reason",
                                     "password reset", "--state-dir", setup.state});
  EXPECT_EQ(cleared.exit_code, 0) << cleared.output;
  EXPECT_EQ(client->ask(rcpt("eve@example.org", kCleanIp, "bob@example.com", "m4")),
            "action=DUNNO");
  EXPECT_NE(daemon->log().find("account=eve@example.org marked compromised by reputation"),
            std::string::npos)
      << daemon->log();
  EXPECT_EQ(daemon->log().find(kKey + ".authbl"), std::string::npos)
      << "a query name with the API key was logged";
}

TEST(ReputationDaemon, TheHashedRecipientIsLookedUpOnceAMessageWhenTheAddressIsClean) {
  Rbldnsd dns(abusixZones());
  ReputationSetup setup;
  auto daemon = setup.start(dns.server(), "action = \"HOLD\"\n");
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  auto client = PolicyClient::connectTcp(daemon->port());
  ASSERT_TRUE(client);

  // Two RCPTs of one message: the second is not looked up.
  EXPECT_EQ(client->ask(rcpt("carol@example.org", kCleanIp, "one@example.com", "m1")),
            "action=DUNNO");
  const auto lookups = counter(setup.state, "reputation_lookups_total");
  EXPECT_EQ(client->ask(rcpt("carol@example.org", kCleanIp, kBadRecipient, "m1")), "action=DUNNO");
  EXPECT_EQ(counter(setup.state, "reputation_lookups_total"), lookups);

  // The next message's first RCPT is: its recipient (mixed case) hashes onto the zone.
  EXPECT_EQ(client->ask(rcpt("carol@example.org", kCleanIp, "Victim@Example.NET", "m2")),
            "action=HOLD Message held for review");
  const auto shown =
      runSaslguard({"accounts", "show", "carol@example.org", "--state-dir", setup.state});
  EXPECT_NE(shown.output.find(enrich::sha1Hex(kBadRecipient)), std::string::npos) << shown.output;
  EXPECT_NE(shown.output.find("authbl-rcpt.mail.abusix.zone"), std::string::npos) << shown.output;
}

TEST(ReputationDaemon, LogOnlyMarksAndAnswersDunnoAndUnauthenticatedIsSkipped) {
  Rbldnsd dns(abusixZones());
  ReputationSetup setup;
  auto daemon = setup.start(dns.server(), "");  // action LOG by default
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  auto client = PolicyClient::connectTcp(daemon->port());
  ASSERT_TRUE(client);
  EXPECT_EQ(client->ask(rcpt("", kListedIp, "bob@example.com", "m1")), "action=DUNNO");
  EXPECT_EQ(counter(setup.state, "reputation_lookups_total"), 0u);

  EXPECT_EQ(client->ask(rcpt("dave@example.org", kListedIp, "bob@example.com", "m2")),
            "action=DUNNO");
  const auto listed = runSaslguard({"accounts", "list", "--state-dir", setup.state});
  EXPECT_NE(listed.output.find("dave@example.org"), std::string::npos) << listed.output;
  EXPECT_EQ(client->ask(rcpt("dave@example.org", kListedIp, "bob@example.com", "m3")),
            "action=DUNNO");
  EXPECT_EQ(setup.hookEnvironment()["SASLGUARD_ACTION"], "LOG");
}

TEST(ReputationDaemon, AnAnswerOutside127IsAnErrorNotAListing) {
  Rbldnsd dns(abusixZones());
  ReputationSetup setup;
  auto daemon = setup.start(dns.server(), "action = \"REJECT\"\n");
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  auto client = PolicyClient::connectTcp(daemon->port());
  ASSERT_TRUE(client);
  EXPECT_EQ(client->ask(rcpt("frank@example.org", kOutsideIp, "bob@example.com", "m1")),
            "action=DUNNO");
  EXPECT_EQ(counter(setup.state, "dns_invalid_answers_total"), 1u);
  EXPECT_TRUE(daemon->waitForLog("outside 127.0.0.0/8")) << daemon->log();
}

TEST(ReputationDaemon, DnsFailuresAnswerTheFailureActionAndNeverHang) {
  SilentUdpPort silent;
  ReputationSetup setup;
  auto daemon = setup.start(silent.server(),
                            "self_test = \"off\"\naction = \"REJECT\"\ndns_failure_action = "
                            "\"DEFER\"\n");
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  auto client = PolicyClient::connectTcp(daemon->port());
  ASSERT_TRUE(client);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(client->ask(rcpt("gina@example.org", kListedIp, "bob@example.com", "m1")),
            "action=DEFER 4.7.1 Service temporarily unavailable; try again later");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_GE(counter(setup.state, "reputation_failures_total"), 1u);
  // Other connections are answered meanwhile.
  auto other = PolicyClient::connectTcp(daemon->port());
  ASSERT_TRUE(other);
  EXPECT_EQ(other->ask(postfixRequest("")), "action=DUNNO");
  EXPECT_TRUE(
      daemon->waitForLog("reputation lookup of the client-ip in authbl.mail.abusix.zone "
                         "failed: timeout (answering DEFER)"))
      << daemon->log();
  EXPECT_EQ(daemon->log().find(kKey), std::string::npos) << "the API key was logged";
}

std::string redisState(unsigned short port, int command_timeout_ms = 1000) {
  return "[state]\nbackend = \"redis\"\nfailure_action = \"DEFER\"\n[redis]\nserver = "
         "\"127.0.0.1:" +
         std::to_string(port) + "\"\ncommand_timeout_ms = " + std::to_string(command_timeout_ms) +
         "\n";
}

// With Redis the lookups and the store's round trip run at once: the verdicts still meet the
// store's answer, and marks land in the shared registry set.
TEST(ReputationDaemon, OnRedisListingsMarkTheAccountInTheSharedRegistry) {
  Rbldnsd dns(abusixZones());
  RedisServer redis;
  ReputationSetup setup;
  auto daemon = setup.start(dns.server(), "action = \"REJECT\"\n" + redisState(redis.port()));
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  auto client = PolicyClient::connectTcp(daemon->port());
  ASSERT_TRUE(client);
  const std::string rejected =
      "action=REJECT 5.7.1 Sending from this account is blocked; contact your support";

  EXPECT_EQ(client->ask(rcpt("alice@example.org", kCleanIp, "bob@example.com", "m1")),
            "action=DUNNO");
  EXPECT_EQ(client->ask(rcpt("eve@example.org", kListedIp, "bob@example.com", "m2")), rejected);
  EXPECT_EQ(redis.query({"SISMEMBER", "compromised_accts", "eve@example.org"}), "(integer) 1");
  // The registry answers the next message without a lookup (from a clean address now).
  EXPECT_EQ(client->ask(rcpt("eve@example.org", kCleanIp, "bob@example.com", "m3")),
            "action=REJECT 5.7.1 This account is blocked; contact your support");
  EXPECT_EQ(client->ask(rcpt("mallory@example.org", kCleanIp, kBadRecipient, "m4")), rejected);
  EXPECT_EQ(redis.query({"SISMEMBER", "compromised_accts", "mallory@example.org"}), "(integer) 1");
  EXPECT_EQ(redis.query({"SISMEMBER", "compromised_accts", "alice@example.org"}), "(integer) 0");
  const auto mark = redis.query({"HGET", "{saslguard:mallory@example.org}:mark", "evidence"});
  ASSERT_TRUE(mark);
  EXPECT_NE(mark->find(enrich::sha1Hex(kBadRecipient)), std::string::npos) << *mark;
  EXPECT_EQ(counter(setup.state, "reputation_lookups_total"), 5u)
      << "m1 and m4: address and recipient; m2: the listed address; m3: none (the registry)";
}

// DNS silent and Redis stopped: the request waits for one timeout, not for both in turn.
TEST(ReputationDaemon, OnRedisAHungResolverAndAHungStoreCostOneTimeoutNotTwo) {
  SilentUdpPort silent;
  RedisServer redis;
  ReputationSetup setup;
  setup.dns_timing = "timeout_ms = 1500\ntries = 1\n";
  auto daemon =
      setup.start(silent.server(), "self_test = \"off\"\naction = \"REJECT\"\n" +
                                       redisState(redis.port(), 1500) + "pool_size = 1\n");
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  auto client = PolicyClient::connectTcp(daemon->port());
  ASSERT_TRUE(client);
  // This worker's one Redis connection is made first (a request that looks nothing up), so the
  // stopped server costs the command timeout, not the shorter connect timeout.
  EXPECT_EQ(client->ask(postfixRequest("gina@example.org", kCleanIp, "END-OF-MESSAGE")),
            "action=DUNNO");
  redis.pause();
  const auto started = std::chrono::steady_clock::now();
  const auto reply = client->ask(rcpt("gina@example.org", kCleanIp, "bob@example.com", "m1"));
  const auto elapsed = std::chrono::steady_clock::now() - started;
  redis.resume();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->substr(0, 12), "action=DEFER") << *reply;
  EXPECT_GE(elapsed, 1400ms) << "answered before either timeout";
  EXPECT_LT(elapsed, 2700ms) << "the lookup and the store call were waited for in turn";
  // Without them at once: 1.5 s for DNS, then 1.5 s for Redis.
  EXPECT_TRUE(daemon->waitForLog("reputation lookup of the client-ip")) << daemon->log();
}

TEST(ReputationDaemon, TheSelfTestRefusesToStartWhenTheTestPointIsNotListed) {
  auto zones = abusixZones();
  zones[0].content = "$TTL 60\n:127.0.0.4:listed\n" + kListedIp + "\n";  // no 127.0.0.2
  Rbldnsd dns(zones);
  {
    ReputationSetup setup;
    auto daemon = setup.start(dns.server(), "");
    EXPECT_FALSE(daemon->ready());
    EXPECT_NE(daemon->wait(), 0);
    EXPECT_NE(daemon->log().find("zone authbl.mail.abusix.zone: test point 127.0.0.2 answered "
                                 "not listed"),
              std::string::npos)
        << daemon->log();
  }
  {
    ReputationSetup setup;
    auto daemon = setup.start(dns.server(), "self_test = \"warn\"\n");
    EXPECT_TRUE(daemon->ready()) << daemon->log();
  }
}

TEST(ReputationDaemon, ANewMarkMailsTheOperatorOnceAndAnSmtpOutageNeverDelaysReplies) {
  Rbldnsd dns(abusixZones());
  // First with nobody listening on the SMTP port: replies stay fast, the mail waits and retries.
  const auto port = SmtpSink::freePort();
  ReputationSetup setup;
  auto daemon = setup.start(
      dns.server(), "action = \"REJECT\"\n",
      "mail_url = \"smtp://127.0.0.1:" + std::to_string(port) +
          "\"\nmail_from = \"saslguard@example.org\"\nmail_to = [\"postmaster@example.org\"]\n");
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  auto client = PolicyClient::connectTcp(daemon->port());
  ASSERT_TRUE(client);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(client->ask(rcpt("ivan@example.org", kListedIp, "bob@example.com", "m1")),
            "action=REJECT 5.7.1 Sending from this account is blocked; contact your support");
  EXPECT_EQ(client->ask(rcpt("ivan@example.org", kListedIp, "bob@example.com", "m2")),
            "action=REJECT 5.7.1 This account is blocked; contact your support");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  EXPECT_TRUE(daemon->waitForLog("mail about account ivan@example.org: attempt 1 of 8 failed"))
      << daemon->log();
  EXPECT_GE(counter(setup.state, "mail_attempts_failed_total"), 1u);

  // The SMTP server comes up: the retry delivers exactly one mail for the one new mark.
  SmtpSink sink(port);
  ASSERT_TRUE(sink.running()) << sink.log();
  ASSERT_TRUE(sink.waitForMessages(1, 30s)) << daemon->log();
  const auto message = sink.messages().front();
  EXPECT_NE(message.find("Subject: saslguard: ivan@example.org marked compromised by reputation"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("authbl.mail.abusix.zone"), std::string::npos) << message;
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(sink.messages().size(), 1u);
  EXPECT_EQ(counter(setup.state, "mails_sent_total"), 1u);
}

TEST(ReputationDaemon, MarksSurviveKillNine) {
  Rbldnsd dns(abusixZones());
  ReputationSetup setup;
  {
    auto daemon = setup.start(dns.server(), "action = \"REJECT\"\n");
    ASSERT_TRUE(daemon->ready()) << daemon->log();
    auto client = PolicyClient::connectTcp(daemon->port());
    ASSERT_TRUE(client);
    EXPECT_NE(client->ask(rcpt("hank@example.org", kListedIp, "bob@example.com", "m1")),
              "action=DUNNO");
    daemon->signal(SIGKILL);
    daemon->wait();
  }
  auto daemon = setup.start(dns.server(), "action = \"REJECT\"\n");
  ASSERT_TRUE(daemon->ready()) << daemon->log();
  auto client = PolicyClient::connectTcp(daemon->port());
  ASSERT_TRUE(client);
  EXPECT_EQ(client->ask(rcpt("hank@example.org", kCleanIp, "bob@example.com", "m2")),
            "action=REJECT 5.7.1 This account is blocked; contact your support");
}

}  // namespace
}  // namespace saslguard::testing

namespace saslguard::testing {
namespace {

TEST(ReputationCheckConfig, NamesAMissingApiKeyWithoutStartingAnything) {
  TempDir dir;
  const auto config = (dir / "saslguard.toml").string();
  std::ofstream(config) << "[detectors.reputation]\nenabled = true\npreset = \"abusix\"\n";
  const auto checked = runSaslguard({"check-config", "--quiet", "--config", config});
  EXPECT_EQ(checked.exit_code, 1);
  EXPECT_NE(checked.output.find("zone authbl.mail.abusix.zone needs the API key"),
            std::string::npos)
      << checked.output;
  std::ofstream(config, std::ios::app) << "api_key = \"abc\"\n";
  EXPECT_EQ(runSaslguard({"check-config", "--quiet", "--config", config}).exit_code, 0);
}

}  // namespace
}  // namespace saslguard::testing
