// postfix_test.cpp — end to end: swaks submits through a real Postfix 3.7 (Dovecot SASL, XCLIENT,
// smtp-sink as the next hop) that asks the built saslguard at RCPT and end of data. One Postfix
// serves the whole suite; each test restarts only saslguard with its own configuration and state.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <thread>

#include "support/child_process.hpp"
#include "support/daemon_process.hpp"
#include "support/http_client.hpp"
#include "support/mmdb.hpp"
#include "support/postfix.hpp"
#include "support/rbldnsd.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::testing {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

const PostfixAccount kAlice{"alice@e2e.test", "alicepw"};
const PostfixAccount kBob{"bob@e2e.test", "bobpw"};
const PostfixAccount kCarol{"carol@e2e.test", "carolpw"};

class PostfixE2e : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!PostfixInstance::available()) return;
    policy_port_ = freeLoopbackPort();
    postfix_ = new PostfixInstance(policy_port_, {kAlice, kBob, kCarol});
  }
  static void TearDownTestSuite() {
    delete postfix_;
    postfix_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(postfix_, nullptr)
        << "needs root and the packages postfix, dovecot-core and swaks (./setup)";
    postfix_->deleteAllMail();
    marker_ = std::string(::testing::UnitTest::GetInstance()->current_test_info()->name());
  }

  void TearDown() override {
    if (HasFailure() && postfix_ != nullptr) {
      std::cerr << postfix_->logs() << "--- saslguard\n" << (daemon_ ? daemon_->log() : "");
    }
    daemon_.reset();
  }

  // (Re)starts saslguard on the port Postfix asks, with `toml` after the common settings.
  DaemonProcess& startSaslguard(const std::string& toml) {
    daemon_.reset();
    config_ = (dir_ / "saslguard.toml").string();
    std::ofstream(config_) << "[eventlog]\nenabled = false\n\n[postfix]\nconfig_directory = \""
                           << postfix_->configDirectory() << "\"\ncommand_timeout_ms = 10000\n\n"
                           << toml;
    daemon_ = std::make_unique<DaemonProcess>(
        std::vector<std::string>{"--config", config_, "--listen",
                                 "127.0.0.1:" + std::to_string(policy_port_), "--state-dir",
                                 (dir_ / "state").string()},
        dir_ / ("daemon-" + std::to_string(++starts_) + ".log"));
    EXPECT_TRUE(daemon_->ready()) << daemon_->log();
    return *daemon_;
  }

  // One message as `account` through the submission port (AUTH PLAIN).
  SmtpOutcome send(const PostfixAccount& account, std::vector<std::string> to = {},
                   const std::string& tag = "") {
    Submission submission;
    submission.from = account.login;
    submission.user = account.login;
    submission.password = account.password;
    if (!to.empty()) submission.to = std::move(to);
    submission.subject = marker_ + tag;
    return postfix_->submit(submission);
  }

  // One message claiming `address` and `login` through XCLIENT.
  SmtpOutcome sendFrom(const std::string& address, const std::string& login,
                       const std::string& tag = "") {
    Submission submission;
    submission.from = login;
    submission.xclient_address = address;
    submission.xclient_login = login;
    submission.subject = marker_ + tag;
    return postfix_->submit(submission);
  }

  RunResult cli(std::vector<std::string> arguments) {
    arguments.insert(arguments.end(),
                     {"--config", config_, "--state-dir", (dir_ / "state").string()});
    return runSaslguard(arguments);
  }

  static inline PostfixInstance* postfix_ = nullptr;
  static inline unsigned short policy_port_ = 0;
  TempDir dir_;
  std::string config_;
  std::string marker_;
  int starts_ = 0;
  std::unique_ptr<DaemonProcess> daemon_;
};

std::vector<std::string> idsOf(const json::value& answer) {
  std::vector<std::string> ids;
  for (const auto& message : answer.at("messages").as_array()) {
    ids.emplace_back(message.at("queue_id").as_string());
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<std::string> sorted(std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());
  return ids;
}

const std::string kDenylistAlice =
    "[detectors.denylist]\naccounts = [\"alice@e2e.test\"]\naction = \"REJECT\"\n"
    "reply_text = \"5.7.1 e2e: sending from this account is refused\"\n";

TEST_F(PostfixE2e, DunnoDeliversAndUnauthenticatedMailAndBouncesAreUntouched) {
  startSaslguard(kDenylistAlice);
  // The wiring is live: the denied account is refused...
  EXPECT_FALSE(send(kAlice, {}, "-denied").accepted());
  // ...and everything saslguard answers DUNNO for goes through to the sink.
  const auto bob = send(kBob, {"r1@remote.test", "r2@remote.test"}, "-bob");
  EXPECT_TRUE(bob.accepted()) << bob.transcript;

  Submission unauthenticated;  // the denied account's address, without AUTH: not ours to judge
  unauthenticated.trusted_port = true;
  unauthenticated.from = kAlice.login;
  unauthenticated.subject = marker_ + "-unauthenticated";
  const auto plain = postfix_->submit(unauthenticated);
  EXPECT_TRUE(plain.accepted()) << plain.transcript;

  Submission bounce = unauthenticated;  // MAIL FROM:<>
  bounce.from = "<>";
  bounce.subject = marker_ + "-bounce";
  const auto null_sender = postfix_->submit(bounce);
  EXPECT_TRUE(null_sender.accepted()) << null_sender.transcript;
  EXPECT_NE(null_sender.transcript.find("MAIL FROM:<>"), std::string::npos);

  Submission authenticated_bounce = bounce;  // a bounce from an authenticated client
  authenticated_bounce.trusted_port = false;
  authenticated_bounce.user = kBob.login;
  authenticated_bounce.password = kBob.password;
  authenticated_bounce.subject = marker_ + "-authenticated-bounce";
  const auto bob_bounce = postfix_->submit(authenticated_bounce);
  EXPECT_TRUE(bob_bounce.accepted()) << bob_bounce.transcript;

  EXPECT_TRUE(postfix_->waitForDelivered(marker_ + "-bob", 1));
  EXPECT_TRUE(postfix_->waitForDelivered(marker_ + "-unauthenticated", 1));
  EXPECT_TRUE(postfix_->waitForDelivered(marker_ + "-bounce", 1));
  EXPECT_TRUE(postfix_->waitForDelivered(marker_ + "-authenticated-bounce", 1));
  EXPECT_EQ(postfix_->deliveredWith(marker_ + "-denied"), 0u);
  EXPECT_TRUE(postfix_->queueIds("hold").empty());
}

TEST_F(PostfixE2e, HoldPutsTheMessageInTheHoldQueue) {
  startSaslguard(
      "[detectors.denylist]\naccounts = [\"alice@e2e.test\"]\naction = \"HOLD\"\n"
      "reply_text = \"e2e: held for review\"\n");
  const auto held = send(kAlice, {"r1@remote.test", "r2@remote.test"});
  ASSERT_TRUE(held.accepted()) << held.transcript;  // the client sees 250
  ASSERT_TRUE(postfix_->waitForQueueIds("hold", 1)) << postfix_->logs();
  EXPECT_EQ(postfix_->queueIds("hold"), std::vector<std::string>{held.queueId()});
  EXPECT_NE(postfix_->maillog().find("hold: RCPT from"), std::string::npos);
  // A queue run passes (queue_run_delay is 1 s here): it stays held, nothing is delivered.
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(postfix_->queueIds("hold"), std::vector<std::string>{held.queueId()});
  EXPECT_EQ(postfix_->deliveredWith(marker_), 0u);
}

TEST_F(PostfixE2e, RejectIsA5xxAtRcptWithOurText) {
  startSaslguard(kDenylistAlice);
  const auto refused = send(kAlice);
  EXPECT_FALSE(refused.accepted());
  const auto reply = refused.firstReply('5');
  EXPECT_EQ(reply,
            "554 5.7.1 <alice@e2e.test>: Sender address rejected: e2e: sending from this account "
            "is refused")
      << refused.transcript;
  // At RCPT: MAIL FROM was accepted, RCPT TO drew the refusal.
  EXPECT_LT(refused.transcript.find(" -> RCPT TO:"), refused.transcript.find(reply))
      << refused.transcript;
  EXPECT_EQ(refused.queueId(), "");
  EXPECT_EQ(postfix_->deliveredWith(marker_), 0u);
}

TEST_F(PostfixE2e, DeferIsA4xx) {
  startSaslguard(
      "[detectors.denylist]\naccounts = [\"alice@e2e.test\"]\naction = \"DEFER\"\n"
      "reply_text = \"4.7.1 e2e: try again later\"\n");
  const auto deferred = send(kAlice);
  EXPECT_FALSE(deferred.accepted());
  EXPECT_EQ(deferred.firstReply('4'),
            "450 4.7.1 <alice@e2e.test>: Sender address rejected: e2e: try again later")
      << deferred.transcript;
  EXPECT_EQ(deferred.firstReply('5'), "") << deferred.transcript;
}

TEST_F(PostfixE2e, QuotaHoldsThenRejectsAtEndOfDataAndTheRegistryRefusesAfterwards) {
  startSaslguard(
      "[detectors.quota]\nwindows = [\"24h:3\"]\nmark_on = \"reject\"\n"
      "reply_text = \"5.7.1 e2e: recipient quota exceeded\"\n");
  const auto first = send(kCarol, {"a@remote.test", "b@remote.test"}, "-first");  // 2 < 3
  EXPECT_TRUE(first.accepted()) << first.transcript;
  const auto second = send(kCarol, {"c@remote.test", "d@remote.test"}, "-second");  // 4 >= 3
  ASSERT_TRUE(second.accepted()) << second.transcript;
  ASSERT_TRUE(postfix_->waitForQueueIds("hold", 1)) << postfix_->logs();
  EXPECT_EQ(postfix_->queueIds("hold"), std::vector<std::string>{second.queueId()});

  std::vector<std::string> many;
  for (int i = 0; i < 8; ++i) many.push_back("bulk" + std::to_string(i) + "@remote.test");
  const auto third = send(kCarol, many, "-third");  // 12 >= 2 x 3: refused after DATA
  EXPECT_FALSE(third.accepted());
  const auto refusal = third.firstReply('5');
  EXPECT_NE(refusal.find("554 5.7.1 <END-OF-MESSAGE>: End-of-data rejected: e2e: recipient quota "
                         "exceeded"),
            std::string::npos)
      << third.transcript;

  // Marked compromised: even one recipient is refused now, at RCPT, by the registry.
  const auto after = send(kCarol, {"one@remote.test"}, "-after");
  EXPECT_FALSE(after.accepted());
  EXPECT_NE(after.firstReply('5').find("This account is blocked"), std::string::npos)
      << after.transcript;
  EXPECT_NE(cli({"accounts", "show", kCarol.login}).output.find("detector:   quota"),
            std::string::npos);
  // Other accounts are not affected.
  EXPECT_TRUE(send(kBob, {}, "-bob").accepted());
  EXPECT_TRUE(postfix_->waitForDelivered(marker_ + "-first", 1));
  EXPECT_TRUE(postfix_->waitForDelivered(marker_ + "-bob", 1));
  EXPECT_EQ(postfix_->deliveredWith(marker_ + "-third"), 0u);
}

TEST_F(PostfixE2e, ReputationListingThroughARealDnsblMarksTheAccount) {
  Rbldnsd dnsbl({{"bl.e2e.test", "ip4set", "bl", "$TTL 60\n:127.0.0.2:listed\n192.0.2.66\n"}});
  startSaslguard("[dns]\nservers = [\"" + dnsbl.server() +
                 "\"]\ntimeout_ms = 500\n\n[detectors.reputation]\nenabled = true\n"
                 "self_test = \"off\"\naction = \"REJECT\"\nzones = [\"client-ip bl.e2e.test\"]\n");
  EXPECT_TRUE(sendFrom("198.51.100.1", kCarol.login, "-clean").accepted());
  const auto listed = sendFrom("192.0.2.66", kCarol.login, "-listed");
  EXPECT_FALSE(listed.accepted());
  EXPECT_EQ(listed.firstReply('5').substr(0, 9), "554 5.7.1") << listed.transcript;
  // From a clean address again: the registry still refuses the account.
  const auto again = sendFrom("198.51.100.1", kCarol.login, "-again");
  EXPECT_FALSE(again.accepted());
  EXPECT_NE(again.firstReply('5').find("This account is blocked"), std::string::npos)
      << again.transcript;
  EXPECT_TRUE(sendFrom("198.51.100.1", kBob.login, "-bob").accepted());
  EXPECT_TRUE(postfix_->waitForDelivered(marker_ + "-clean", 1));
  EXPECT_EQ(postfix_->deliveredWith(marker_ + "-listed"), 0u);
}

TEST_F(PostfixE2e, GeoThirdCountryThroughXclientIsRefusedAndStaysRefused) {
  const auto database = (dir_ / "country.mmdb").string();
  writeMmdb(database, defaultTestNetworks());
  startSaslguard("[detectors.geo]\nenabled = true\ndatabase = \"" + database +
                 "\"\nmax_countries = 2\nblock_permanent = true\naction = \"REJECT\"\n");
  EXPECT_TRUE(sendFrom(std::string(kGbAddress), kCarol.login, "-gb").accepted());
  EXPECT_TRUE(sendFrom(std::string(kSeAddress), kCarol.login, "-se").accepted());
  const auto third = sendFrom(std::string(kCnAddress), kCarol.login, "-cn");
  EXPECT_FALSE(third.accepted());
  EXPECT_EQ(third.firstReply('5'),
            "554 5.7.1 <carol@e2e.test>: Sender address rejected: Policy violation. Please "
            "contact your support")
      << third.transcript;
  // Back home: refused all the same, the account is marked.
  EXPECT_FALSE(sendFrom(std::string(kGbAddress), kCarol.login, "-home").accepted());
  // Another account from the same countries is fine.
  EXPECT_TRUE(sendFrom(std::string(kCnAddress), kBob.login, "-bob").accepted());
  EXPECT_TRUE(postfix_->waitForDelivered(marker_ + "-gb", 1));
  EXPECT_TRUE(postfix_->waitForDelivered(marker_ + "-bob", 1));
  EXPECT_EQ(postfix_->deliveredWith(marker_ + "-cn"), 0u);
  EXPECT_EQ(postfix_->deliveredWith(marker_ + "-home"), 0u);
}

TEST_F(PostfixE2e, SaslguardStoppedPostfixDefersAndMailFlowsWhenItIsBack) {
  startSaslguard("");
  EXPECT_TRUE(send(kAlice, {}, "-before").accepted());
  daemon_->signal(SIGTERM);
  ASSERT_EQ(daemon_->wait(), 0) << daemon_->log();

  const auto down = send(kAlice, {}, "-down");
  EXPECT_FALSE(down.accepted());
  EXPECT_EQ(down.firstReply('4'),
            "451 4.3.5 <alice@e2e.test>: Sender address rejected: Server configuration problem")
      << down.transcript;
  EXPECT_NE(postfix_->maillog().find("problem talking to server 127.0.0.1:" +
                                     std::to_string(policy_port_)),
            std::string::npos);

  startSaslguard("");
  const auto back = send(kAlice, {}, "-back");
  EXPECT_TRUE(back.accepted()) << back.transcript;
  EXPECT_TRUE(postfix_->waitForDelivered(marker_ + "-back", 1));
  EXPECT_EQ(postfix_->deliveredWith(marker_ + "-down"), 0u);
}

const std::string kHoldAliceAndBob =
    "[detectors.denylist]\naccounts = [\"alice@e2e.test\", \"bob@e2e.test\"]\n"
    "action = \"HOLD\"\n\n[admin]\nenabled = true\nlisten = \"127.0.0.1:0\"\n";

TEST_F(PostfixE2e, HeldReleaseAndPurgeFromTheCommandLine) {
  startSaslguard(kHoldAliceAndBob);
  const auto a1 = send(kAlice, {"r1@remote.test", "r2@remote.test"}, "-alice1");
  const auto a2 = send(kAlice, {}, "-alice2");
  const auto b1 = send(kBob, {}, "-bob1");
  ASSERT_TRUE(a1.accepted() && a2.accepted() && b1.accepted());
  ASSERT_TRUE(postfix_->waitForQueueIds("hold", 3)) << postfix_->logs();

  // Listed in any spelling of the account; bob's message is not alice's.
  auto listed = cli({"accounts", "held", "Alice@E2E.test", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  const auto answer = json::parse(listed.output.substr(listed.output.find('{')));
  EXPECT_EQ(idsOf(answer), sorted({a1.queueId(), a2.queueId()}));
  const auto& first = answer.at("messages").as_array()[0].as_object();
  EXPECT_EQ(first.at("sender"), "alice@e2e.test");
  EXPECT_EQ(first.at("sasl_username"), "alice@e2e.test");
  EXPECT_GT(first.at("size").as_int64(), 0);
  auto text = cli({"accounts", "held", kAlice.login});
  EXPECT_NE(text.output.find(a1.queueId()), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("r1@remote.test"), std::string::npos) << text.output;
  EXPECT_EQ(text.output.find(b1.queueId()), std::string::npos) << text.output;

  // A dry run names what it would release and changes nothing.
  auto dry = cli({"accounts", "release", kAlice.login, "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_NE(dry.output.find(a2.queueId()), std::string::npos) << dry.output;
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(postfix_->queueIds("hold").size(), 3u);
  EXPECT_EQ(postfix_->deliveredWith(marker_), 0u);

  auto released = cli({"accounts", "release", kAlice.login});
  ASSERT_EQ(released.exit_code, 0) << released.output;
  EXPECT_NE(released.output.find("released 2 held message(s)"), std::string::npos)
      << released.output;
  EXPECT_NE(released.output.find("hold queue: release by cli:"), std::string::npos)
      << released.output;  // the audit line (log.sink = stderr here)
  EXPECT_TRUE(postfix_->waitForDelivered(marker_ + "-alice1", 1)) << postfix_->logs();
  EXPECT_TRUE(postfix_->waitForDelivered(marker_ + "-alice2", 1));
  EXPECT_EQ(postfix_->queueIds("hold"), std::vector<std::string>{b1.queueId()});

  auto dry_purge = cli({"accounts", "purge", kBob.login, "--dry-run"});
  ASSERT_EQ(dry_purge.exit_code, 0) << dry_purge.output;
  EXPECT_EQ(postfix_->queueIds("hold"), std::vector<std::string>{b1.queueId()});
  auto purged = cli({"accounts", "purge", kBob.login});
  ASSERT_EQ(purged.exit_code, 0) << purged.output;
  EXPECT_TRUE(postfix_->waitForQueueIds("hold", 0));
  EXPECT_TRUE(postfix_->queueJson().empty());
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(postfix_->deliveredWith(marker_ + "-bob1"), 0u);
  auto none = cli({"accounts", "held", kBob.login});
  EXPECT_EQ(none.exit_code, 0) << none.output;
  EXPECT_NE(none.output.find("no held message"), std::string::npos) << none.output;
}

TEST_F(PostfixE2e, HeldReleaseAndPurgeThroughTheAdminApi) {
  auto& daemon = startSaslguard(kHoldAliceAndBob);
  const auto port = daemon.adminPort();
  ASSERT_NE(port, 0);
  const auto a1 = send(kAlice, {}, "-alice1");
  const auto b1 = send(kBob, {}, "-bob1");
  const auto b2 = send(kBob, {}, "-bob2");
  ASSERT_TRUE(a1.accepted() && b1.accepted() && b2.accepted());
  ASSERT_TRUE(postfix_->waitForQueueIds("hold", 3)) << postfix_->logs();

  auto listed = httpGet(port, "/api/v1/accounts/alice%40e2e.test/held");
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(idsOf(json::parse(listed.body)), std::vector<std::string>{a1.queueId()});
  listed = httpGet(port, "/api/v1/accounts/BOB@e2e.test/held");
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(idsOf(json::parse(listed.body)), sorted({b1.queueId(), b2.queueId()}));

  auto dry =
      httpJson(port, "POST", "/api/v1/accounts/bob@e2e.test/held/purge", R"({"dry_run": true})");
  ASSERT_EQ(dry.status, 200) << dry.body;
  EXPECT_EQ(json::parse(dry.body).at("matched"), 2);
  EXPECT_EQ(json::parse(dry.body).at("purged"), 0);
  EXPECT_EQ(postfix_->queueIds("hold").size(), 3u);
  EXPECT_EQ(httpJson(port, "POST", "/api/v1/accounts/bob@e2e.test/held/purge", "[]").status, 400);
  EXPECT_EQ(
      httpJson(port, "POST", "/api/v1/accounts/bob@e2e.test/held/purge", R"({"dry_run": "yes"})")
          .status,
      400);
  auto nothing = httpGet(port, "/api/v1/accounts/carol@e2e.test/held");
  ASSERT_EQ(nothing.status, 200) << nothing.body;
  EXPECT_TRUE(json::parse(nothing.body).at("messages").as_array().empty());
  EXPECT_EQ(postfix_->queueIds("hold").size(), 3u);

  auto purged = httpJson(port, "POST", "/api/v1/accounts/bob@e2e.test/held/purge", "");
  ASSERT_EQ(purged.status, 200) << purged.body;
  EXPECT_EQ(json::parse(purged.body).at("purged"), 2);
  EXPECT_EQ(postfix_->queueIds("hold"), std::vector<std::string>{a1.queueId()});

  auto released = httpJson(port, "POST", "/api/v1/accounts/alice@e2e.test/held/release", "{}");
  ASSERT_EQ(released.status, 200) << released.body;
  EXPECT_EQ(json::parse(released.body).at("released"), 1);
  EXPECT_TRUE(postfix_->waitForDelivered(marker_ + "-alice1", 1)) << postfix_->logs();
  EXPECT_TRUE(postfix_->waitForQueueIds("hold", 0));
  EXPECT_EQ(postfix_->deliveredWith(marker_ + "-bob"), 0u);
  EXPECT_TRUE(daemon.waitForLog("hold queue: purge by api@loopback")) << daemon.log();
}

}  // namespace
}  // namespace saslguard::testing
