// reputation_test.cpp — the reputation detector through the real pipeline, the real embedded
// store and a real rbldnsd: query names (reversed IPv4/IPv6, hashed recipient, key label), the
// order of the lookups, listed codes, zone actions, LOG marks, failures, shadow mode, the
// evidence, mark expiry and the zone entries of the configuration.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <fstream>

#include "config/zones.hpp"
#include "engine/detectors/reputation.hpp"
#include "engine/enrichers.hpp"
#include "engine/pipeline.hpp"
#include "enrich/dns.hpp"
#include "protocol/parser.hpp"
#include "store/embedded_store.hpp"
#include "support/rbldnsd.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::engine {
namespace {

using testing::Rbldnsd;
using testing::RbldnsdZone;
using testing::TempDir;

const TimePoint kNow = fromUnixMs(1'790'000'000'000);

std::vector<RbldnsdZone> zones() {
  return {
      {"k1.ip.test", "ip4set", "ip", ":127.0.0.4:\n192.0.2.66\n192.0.2.77 :127.0.0.9:\n"},
      {"k1.ip.test", "ip6trie", "ip6", ":127.0.0.4:\n2001:db8::66\n"},
      {"plain.ip.test", "ip4set", "plain", ":127.0.0.2:\n198.51.100.99\n"},
      {"k1.rcpt.test", "dnset", "rcpt",
       ":127.0.0.2:\n" + enrich::sha1Hex("victim@example.net") + "\n"},
  };
}

class ReputationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::EmbeddedStoreOptions options;
    options.dir = dir_ / "state";
    options.start_flusher = false;
    store_ = std::move(*store::EmbeddedStore::open(options));
  }

  config::Settings settings(std::vector<std::string> zone_entries, std::string action = "REJECT") {
    config::Settings s;
    s.detectors.quota.enabled = false;
    s.detectors.reputation.enabled = true;
    s.detectors.reputation.api_key = "k1";
    s.detectors.reputation.action = std::move(action);
    s.detectors.reputation.zones = std::move(zone_entries);
    s.dns.servers = {dns_.server()};
    s.dns.timeout_ms = 200;
    return s;
  }

  PipelinePtr build(config::Settings s) {
    auto pipeline =
        Pipeline::build(std::make_shared<const config::Settings>(std::move(s)), *store_, recent_);
    EXPECT_TRUE(pipeline.has_value()) << pipeline.error().message;
    return *pipeline;
  }

  // Runs one RCPT request as a connection does: lookups when needed, then decide.
  std::string ask(const Pipeline& pipeline, const std::string& attributes, TimePoint now = kNow) {
    text_ = "request=smtpd_access_policy\nprotocol_state=RCPT\ninstance=i1\n" + attributes + "\n\n";
    protocol::RequestParser parser;
    EXPECT_EQ(parser.parse(text_, request_).status, protocol::ParseStatus::Complete);
    std::string reply;
    looked_up_ = pipeline.needsLookups(request_, now);
    if (!looked_up_) {
      pipeline.decide(request_, now, reply);
    } else {
      boost::asio::io_context context;
      Enrichers enrichers;
      enrichers.dns = std::move(
          *enrich::DnsResolver::create(context, pipeline.dnsOptions(), pipeline.dnsCache()));
      boost::asio::co_spawn(
          context,
          [&]() -> boost::asio::awaitable<void> {
            const auto lookups = co_await pipeline.lookups(request_, now, enrichers);
            pipeline.decide(request_, now, reply, &lookups);
          },
          boost::asio::detached);
      context.run();
    }
    return reply.empty() ? reply : reply.substr(0, reply.size() - 2);
  }

  Rbldnsd dns_{zones()};
  TempDir dir_;
  std::unique_ptr<store::EmbeddedStore> store_;
  RecentDecisions recent_{1000};
  std::string text_;
  protocol::Request request_;
  bool looked_up_ = false;
};

constexpr std::string_view kReject =
    "action=REJECT 5.7.1 Sending from this account is blocked; contact your support";

TEST_F(ReputationTest, AListedIpv4OrIpv6ClientAddressMarksTheAccountWithItsEvidence) {
  auto pipeline = build(settings({"client-ip ip.test key listed=127.0.0.4"}));
  EXPECT_EQ(ask(*pipeline, "sasl_username=a@example.org\nclient_address=192.0.2.1"),
            "action=DUNNO");
  EXPECT_TRUE(looked_up_);
  EXPECT_EQ(ask(*pipeline, "sasl_username=b@example.org\nclient_address=192.0.2.66"), kReject);
  EXPECT_EQ(ask(*pipeline, "sasl_username=c@example.org\nclient_address=2001:db8::66"), kReject);

  const auto mark = **store_->getMark("b@example.org", kNow);
  EXPECT_EQ(mark.detector, "reputation");
  EXPECT_EQ(mark.reason, "client address 192.0.2.66 is listed in ip.test (127.0.0.4)");
  const auto evidence = boost::json::parse(mark.evidence).as_object();
  EXPECT_EQ(evidence.at("zone").as_string(), "ip.test");
  EXPECT_EQ(evidence.at("kind").as_string(), "client-ip");
  EXPECT_EQ(evidence.at("code").as_string(), "127.0.0.4");
  EXPECT_EQ(evidence.at("client_address").as_string(), "192.0.2.66");
  EXPECT_EQ(mark.evidence.find("k1"), std::string::npos) << "the API key is not evidence";
  EXPECT_FALSE(mark.expires.has_value());

  // Marked: answered by the registry, and no lookup is wanted any more.
  EXPECT_EQ(ask(*pipeline, "sasl_username=b@example.org\nclient_address=192.0.2.1"),
            "action=REJECT 5.7.1 This account is blocked; contact your support");
  EXPECT_FALSE(looked_up_);
}

TEST_F(ReputationTest, OnlyTheListedCodesCountAndAZoneMayOverrideTheAction) {
  auto pipeline = build(
      settings({"client-ip ip.test key listed=127.0.0.4", "client-ip plain.ip.test action=HOLD"}));
  // 192.0.2.77 answers 127.0.0.9, outside listed=: not a listing.
  EXPECT_EQ(ask(*pipeline, "sasl_username=a@example.org\nclient_address=192.0.2.77"),
            "action=DUNNO");
  // The unkeyed zone takes any 127/8 code and holds.
  EXPECT_EQ(ask(*pipeline, "sasl_username=a@example.org\nclient_address=198.51.100.99"),
            "action=HOLD Message held for review");
}

TEST_F(ReputationTest, TheRecipientIsLookedUpOnlyWhenTheAddressIsNotListed) {
  auto pipeline =
      build(settings({"client-ip ip.test key", "hashed-recipient rcpt.test key"}, "HOLD"));
  EXPECT_EQ(
      ask(*pipeline,
          "sasl_username=a@example.org\nclient_address=192.0.2.1\nrecipient=VICTIM@example.NET"),
      "action=HOLD Message held for review");
  const auto mark = **store_->getMark("a@example.org", kNow);
  const auto evidence = boost::json::parse(mark.evidence).as_object();
  EXPECT_EQ(evidence.at("kind").as_string(), "hashed-recipient");
  EXPECT_EQ(evidence.at("recipient_sha1").as_string(), enrich::sha1Hex("victim@example.net"));

  // Listed address and listed recipient: the address is the evidence.
  EXPECT_EQ(
      ask(*pipeline,
          "sasl_username=b@example.org\nclient_address=192.0.2.66\nrecipient=victim@example.net"),
      "action=HOLD Message held for review");
  EXPECT_EQ(boost::json::parse((*store_->getMark("b@example.org", kNow))->evidence)
                .as_object()
                .at("kind")
                .as_string(),
            "client-ip");
}

TEST_F(ReputationTest, LogMarksWithoutEnforcingAndShadowNeitherMarksNorEnforces) {
  auto pipeline = build(settings({"client-ip ip.test key"}, "LOG"));
  EXPECT_EQ(ask(*pipeline, "sasl_username=a@example.org\nclient_address=192.0.2.66"),
            "action=DUNNO");
  const auto mark = store_->getMark("a@example.org", kNow);
  ASSERT_TRUE(mark && *mark);
  EXPECT_EQ((*mark)->action, "DUNNO");
  EXPECT_EQ(ask(*pipeline, "sasl_username=a@example.org\nclient_address=192.0.2.1"),
            "action=DUNNO");  // a log-only mark is never enforced

  auto shadowed = settings({"client-ip ip.test key"});
  shadowed.detectors.reputation.shadow = true;
  pipeline = build(shadowed);
  EXPECT_EQ(ask(*pipeline, "sasl_username=s@example.org\nclient_address=192.0.2.66"),
            "action=DUNNO");
  EXPECT_FALSE(*store_->getMark("s@example.org", kNow));
}

TEST_F(ReputationTest, MarksExpireWhenConfigured) {
  auto s = settings({"client-ip ip.test key"});
  s.detectors.reputation.mark_expiry_s = 3600;
  auto pipeline = build(s);
  EXPECT_EQ(ask(*pipeline, "sasl_username=a@example.org\nclient_address=192.0.2.66"), kReject);
  const auto mark = **store_->getMark("a@example.org", kNow);
  ASSERT_TRUE(mark.expires);
  EXPECT_EQ(*mark.expires, kNow + std::chrono::hours(1));
  EXPECT_FALSE(*store_->getMark("a@example.org", kNow + std::chrono::hours(2)));
}

TEST_F(ReputationTest, DnsFailuresAnswerTheFailureAction) {
  testing::SilentUdpPort silent;
  auto s = settings({"client-ip ip.test key"});
  s.dns.servers = {silent.server()};
  s.dns.tries = 1;
  auto pipeline = build(s);
  EXPECT_EQ(ask(*pipeline, "sasl_username=a@example.org\nclient_address=192.0.2.66"),
            "action=DUNNO");
  s.detectors.reputation.dns_failure_action = "DEFER";
  pipeline = build(s);
  EXPECT_EQ(ask(*pipeline, "sasl_username=a@example.org\nclient_address=192.0.2.66"),
            "action=DEFER 4.7.1 Service temporarily unavailable; try again later");
  EXPECT_FALSE(*store_->getMark("a@example.org", kNow));
}

TEST_F(ReputationTest, OnlyAuthenticatedRcptRequestsAreLookedUp) {
  auto pipeline = build(settings({"client-ip ip.test key"}));
  EXPECT_EQ(ask(*pipeline, "sasl_username=\nclient_address=192.0.2.66"), "action=DUNNO");
  EXPECT_FALSE(looked_up_);
  text_ =
      "request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nsasl_username=a@example.org\n"
      "client_address=192.0.2.66\n\n";
  protocol::RequestParser parser;
  ASSERT_EQ(parser.parse(text_, request_).status, protocol::ParseStatus::Complete);
  EXPECT_FALSE(pipeline->needsLookups(request_, kNow));
}

TEST(ReputationZones, QueryNamesAreReversedOrHashedThenKeyThenZone) {
  config::ReputationSettings s;
  s.preset = "abusix";
  s.api_key = "KEY1";
  const auto zones = *reputationZones(s);
  ASSERT_EQ(zones.size(), 2u);
  EXPECT_EQ(ReputationDetector::queryName(zones[0], "192.0.2.1"),
            "1.2.0.192.KEY1.authbl.mail.abusix.zone");
  EXPECT_EQ(ReputationDetector::queryName(zones[0], "2001:db8::1"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.KEY1.authbl.mail."
            "abusix.zone");
  EXPECT_EQ(ReputationDetector::queryName(zones[0], "not an address"), "");
  EXPECT_EQ(ReputationDetector::queryName(zones[1], "Victim@Example.NET"),
            enrich::sha1Hex("victim@example.net") + ".KEY1.authbl-rcpt.mail.abusix.zone");
}

TEST(ReputationZones, KeyedZonesNeedAUsableKeyAndTheFileWins) {
  config::ReputationSettings s;
  s.preset = "abusix";
  EXPECT_NE(reputationZones(s).error().message.find("needs the API key"), std::string::npos);
  s.api_key = "bad.key";
  EXPECT_NE(reputationZones(s).error().message.find("not a DNS label"), std::string::npos);
  TempDir dir;
  const auto file = (dir / "key").string();
  std::ofstream(file) << "  filekey \n";
  s.api_key_file = file;
  EXPECT_EQ(ReputationDetector::queryName((*reputationZones(s))[0], "192.0.2.1"),
            "1.2.0.192.filekey.authbl.mail.abusix.zone");
  s.api_key_file = (dir / "missing").string();
  EXPECT_NE(reputationZones(s).error().message.find("api_key_file"), std::string::npos);
  config::ReputationSettings none;
  EXPECT_NE(reputationZones(none).error().message.find("no zone configured"), std::string::npos);
}

TEST(ReputationZones, EntriesAreCheckedWordByWord) {
  const auto spec = *config::parseZoneSpec(
      "client-ip BL.Example.NET. key listed=127.0.0.2|127.0.1.0/24 "
      "action=hold test=127.0.0.2");
  EXPECT_EQ(spec.zone, "bl.example.net");
  EXPECT_TRUE(spec.keyed);
  EXPECT_EQ(spec.listed.size(), 2u);
  EXPECT_EQ(spec.action, "HOLD");
  EXPECT_EQ(spec.test_item, "127.0.0.2");
  for (const auto& [entry, problem] : std::vector<std::pair<std::string, std::string>>{
           {"client-ip", "expected KIND ZONE"},
           {"server-ip bl.example", "unknown kind 'server-ip'"},
           {"client-ip bl..example", "is not a zone name"},
           {"client-ip bl.example listed=10.0.0.1", "not an address or network in 127.0.0.0/8"},
           {"client-ip bl.example action=DUNNO", "expected REJECT, HOLD, DEFER or LOG"},
           {"client-ip bl.example test=nope", "'nope' is not an IP address"},
           {"client-ip bl.example weight=3", "unknown word 'weight=3'"},
       }) {
    const auto parsed = config::parseZoneSpec(entry);
    ASSERT_FALSE(parsed) << entry;
    EXPECT_NE(parsed.error().message.find(problem), std::string::npos)
        << entry << ": " << parsed.error().message;
  }
}

}  // namespace
}  // namespace saslguard::engine
