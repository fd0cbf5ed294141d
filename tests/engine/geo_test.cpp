// geo_test.cpp — the geo detector as a table of geoip-policyd's documented behaviour, through the
// real pipeline and the real embedded store with an injected clock: strict ">", home vs foreign,
// trusted lists, zero limits, first-match custom settings, expiry after ttl_s, IPv6 per /64,
// block_permanent marks, and exact counts under concurrent requests for one account. Countries
// come from a table standing in for the MaxMind DB (the reader itself is tested in enrich/).
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <fstream>
#include <map>
#include <thread>

#include "engine/detectors/geo.hpp"
#include "engine/geo_custom_settings.hpp"
#include "engine/pipeline.hpp"
#include "protocol/parser.hpp"
#include "store/embedded_store.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::engine {
namespace {

using testing::TempDir;

const TimePoint kNow = fromUnixMs(1'790'000'000'000);
constexpr std::string_view kReject =
    "action=REJECT 5.7.1 Policy violation. Please contact your support";
constexpr std::string_view kDunno = "action=DUNNO";

// Countries by address prefix: "10.1." → DE etc. Anything else has none.
class TableGeoDatabase final : public enrich::GeoIpDatabase {
 public:
  std::optional<std::string> country(std::string_view address) const override {
    for (const auto& [prefix, code] : kTable) {
      if (address.starts_with(prefix)) return code;
    }
    return std::nullopt;
  }
  Result<bool> reloadIfChanged() override { return false; }
  std::string description() const override { return "test table"; }

 private:
  static inline const std::vector<std::pair<std::string, std::string>> kTable{
      {"81.1.", "DE"}, {"81.2.", "FR"}, {"81.3.", "IT"},    {"81.4.", "ES"},
      {"81.5.", "CN"}, {"81.6.", "US"}, {"2001:db8:", "JP"}};
};

class GeoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::EmbeddedStoreOptions options;
    options.dir = dir_ / "state";
    options.start_flusher = false;
    store_ = std::move(*store::EmbeddedStore::open(options));
  }

  PipelinePtr build(const config::GeoSettings& geo) {
    auto detector = GeoDetector::create(geo, std::make_shared<TableGeoDatabase>());
    EXPECT_TRUE(detector.has_value()) << detector.error().message;
    std::vector<ConfiguredDetector> detectors;
    detectors.push_back({std::move(*detector), geo.shadow});
    auto pipeline = Pipeline::buildWith(std::make_shared<const config::Settings>(), *store_,
                                        recent_, std::move(detectors));
    EXPECT_TRUE(pipeline.has_value()) << pipeline.error().message;
    return *pipeline;
  }

  std::string ask(const Pipeline& pipeline, const std::string& account, const std::string& client,
                  TimePoint now = kNow) {
    const auto text = "request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=" + account +
                      "\nclient_address=" + client + "\n\n";
    protocol::RequestParser parser;
    protocol::Request request;
    EXPECT_EQ(parser.parse(text, request).status, protocol::ParseStatus::Complete);
    std::string reply;
    pipeline.decide(request, now, reply);
    return reply.substr(0, reply.size() - 2);
  }

  TempDir dir_;
  std::unique_ptr<store::EmbeddedStore> store_;
  RecentDecisions recent_{1000};
};

config::GeoSettings geo() {
  config::GeoSettings settings;
  settings.enabled = true;
  return settings;
}

TEST_F(GeoTest, TheCountThatFiresIsStrictlyGreaterThanTheLimitAndIncludesThisRequest) {
  auto s = geo();
  s.max_countries = 3;
  s.max_ips = 100;
  auto pipeline = build(s);
  EXPECT_EQ(ask(*pipeline, "a@example.org", "81.1.0.1"), kDunno);   // DE
  EXPECT_EQ(ask(*pipeline, "a@example.org", "81.2.0.1"), kDunno);   // FR
  EXPECT_EQ(ask(*pipeline, "a@example.org", "81.3.0.1"), kDunno);   // IT: 3, not > 3
  EXPECT_EQ(ask(*pipeline, "a@example.org", "81.4.0.1"), kReject);  // ES: 4 > 3
  EXPECT_EQ(ask(*pipeline, "a@example.org", "81.1.0.1"), kReject);  // still 4 within the TTL
  EXPECT_EQ(ask(*pipeline, "b@example.org", "81.4.0.1"), kDunno);   // per account

  s.max_countries = 10;
  s.max_ips = 2;
  pipeline = build(s);
  EXPECT_EQ(ask(*pipeline, "c@example.org", "81.1.0.1"), kDunno);
  EXPECT_EQ(ask(*pipeline, "c@example.org", "81.1.0.2"), kDunno);
  EXPECT_EQ(ask(*pipeline, "c@example.org", "81.1.0.2"), kDunno);  // the same IP again
  EXPECT_EQ(ask(*pipeline, "c@example.org", "81.1.0.3"), kReject);
}

TEST_F(GeoTest, ZeroLimitsFireOnTheFirstForeignIpOrCountry) {
  auto s = geo();
  s.max_countries = 0;
  auto pipeline = build(s);
  EXPECT_EQ(ask(*pipeline, "a@example.org", "81.1.0.1"), kReject);
  s.max_countries = 3;
  s.max_ips = 0;
  pipeline = build(s);
  // An address without a country still counts as an IP.
  EXPECT_EQ(ask(*pipeline, "b@example.org", "192.168.1.1"), kReject);
}

TEST_F(GeoTest, HomeCountriesAreCountedApartWithTheirOwnLimits) {
  auto s = geo();
  s.home_countries = {"de", "FR"};
  s.max_countries = 1;
  s.max_home_ips = 1;
  s.max_home_countries = 5;
  auto pipeline = build(s);
  EXPECT_EQ(ask(*pipeline, "a@example.org", "81.1.0.1"), kDunno);   // home DE, home IPs 1
  EXPECT_EQ(ask(*pipeline, "a@example.org", "81.2.0.1"), kReject);  // home FR, home IPs 2 > 1
  EXPECT_EQ(ask(*pipeline, "b@example.org", "81.1.0.1"), kDunno);   // home
  EXPECT_EQ(ask(*pipeline, "b@example.org", "81.3.0.1"), kDunno);   // 1 foreign country
  EXPECT_EQ(ask(*pipeline, "b@example.org", "81.4.0.1"), kReject);  // 2 foreign countries > 1
}

TEST_F(GeoTest, TrustedListsReplaceCountingForTheirDimension) {
  auto s = geo();
  s.trusted_countries = {"DE"};
  s.max_countries = 0;
  s.max_ips = 0;
  s.trusted_networks = {"81.1.0.0/16"};
  auto pipeline = build(s);
  for (int i = 1; i < 20; ++i) {
    EXPECT_EQ(ask(*pipeline, "a@example.org", "81.1.0." + std::to_string(i)), kDunno);
  }
  EXPECT_EQ(ask(*pipeline, "a@example.org", "81.2.0.1"), kReject);  // FR is not trusted
  s.trusted_countries = {};
  s.max_countries = 10;
  pipeline = build(s);
  EXPECT_EQ(ask(*pipeline, "b@example.org", "81.2.0.1"), kReject);  // not in a trusted network
}

TEST_F(GeoTest, IgnoredNetworksAreNeverLookedAt) {
  auto s = geo();
  s.max_ips = 0;
  s.ignore_networks = {"81.5.0.0/16"};
  auto pipeline = build(s);
  EXPECT_EQ(ask(*pipeline, "a@example.org", "81.5.0.1"), kDunno);
  EXPECT_EQ(ask(*pipeline, "a@example.org", "81.6.0.1"), kReject);
}

TEST_F(GeoTest, EntriesExpireTtlAfterTheyWereLastSeen) {
  auto s = geo();
  s.max_ips = 1;
  s.ttl_s = 3600;
  auto pipeline = build(s);
  EXPECT_EQ(ask(*pipeline, "a@example.org", "81.1.0.1", kNow), kDunno);
  EXPECT_EQ(ask(*pipeline, "a@example.org", "81.1.0.1", kNow + std::chrono::minutes(50)), kDunno);
  // 81.1.0.1 was last seen 50 min in: at 1 h 10 min it still counts, so a second IP fires.
  EXPECT_EQ(ask(*pipeline, "a@example.org", "81.1.0.2", kNow + std::chrono::minutes(70)), kReject);
  // Two hours after both were last seen, both have expired.
  EXPECT_EQ(ask(*pipeline, "a@example.org", "81.1.0.3", kNow + std::chrono::minutes(200)), kDunno);
}

TEST_F(GeoTest, Ipv6ClientsCountPerPrefix) {
  auto s = geo();
  s.max_ips = 1;
  auto pipeline = build(s);
  EXPECT_EQ(ask(*pipeline, "a@example.org", "2001:db8:1:2::1"), kDunno);
  EXPECT_EQ(ask(*pipeline, "a@example.org", "2001:db8:1:2:aaaa:bbbb:cccc:dddd"), kDunno);
  EXPECT_EQ(ask(*pipeline, "a@example.org", "2001:db8:1:3::1"), kReject);
  EXPECT_EQ(GeoDetector::clientKey(*parseAddress("2001:db8:1:2:3:4:5:6"), 64), "2001:db8:1:2::/64");
  EXPECT_EQ(GeoDetector::clientKey(*parseAddress("2001:db8:1:2:3:4:5:6"), 48), "2001:db8:1::/48");
  EXPECT_EQ(GeoDetector::clientKey(*parseAddress("::ffff:81.1.0.1"), 64), "81.1.0.1");
}

TEST_F(GeoTest, IdentitiesIgnoreCase) {
  auto s = geo();
  s.max_ips = 1;
  auto pipeline = build(s);
  EXPECT_EQ(ask(*pipeline, "Alice@Example.org", "81.1.0.1"), kDunno);
  EXPECT_EQ(ask(*pipeline, "alice@example.ORG", "81.1.0.2"), kReject);
}

TEST_F(GeoTest, CustomSettingsFirstMatchWinsAndZeroKeepsTheDefault) {
  TempDir dir;
  const auto file = (dir / "custom.json").string();
  std::ofstream(file) << R"({"data":[
    {"comment":"travels","sender":"Traveller@example.org","ips":0,"countries":5},
    {"comment":"ignored: second entry","sender":"traveller@example.org","countries":1},
    {"sender":"office@example.org","trusted_ips":["81.1.0.0/16"],"trusted_countries":["de"]},
    {"sender":"home@example.org","home_countries":{"codes":["it"],"ips":2,"countries":0}}
  ]})";
  auto s = geo();
  s.max_countries = 1;
  s.max_ips = 100;
  s.custom_settings_file = file;
  auto pipeline = build(s);
  for (const auto* client : {"81.1.0.1", "81.2.0.1", "81.3.0.1", "81.4.0.1", "81.5.0.1"}) {
    EXPECT_EQ(ask(*pipeline, "traveller@example.org", client), kDunno) << client;
  }
  EXPECT_EQ(ask(*pipeline, "traveller@example.org", "81.6.0.1"), kReject);  // 6 > 5
  EXPECT_EQ(ask(*pipeline, "office@example.org", "81.1.0.9"), kDunno);
  EXPECT_EQ(ask(*pipeline, "office@example.org", "81.2.0.9"), kReject);
  EXPECT_EQ(ask(*pipeline, "home@example.org", "81.3.0.1"), kDunno);
  EXPECT_EQ(ask(*pipeline, "home@example.org", "81.3.0.2"), kDunno);
  EXPECT_EQ(ask(*pipeline, "home@example.org", "81.3.0.3"), kReject);  // 3 home IPs > 2
}

TEST_F(GeoTest, CustomSettingsChangedThroughTheSourceApplyAtOnceAndAreWrittenToTheFile) {
  TempDir dir;
  const auto file = (dir / "custom.json").string();
  std::ofstream(file) << R"({"data":[{"sender":"a@example.org","countries":1}]})";
  auto s = geo();
  s.max_countries = 5;
  s.custom_settings_file = file;
  auto pipeline = build(s);
  const auto* geo_detector = dynamic_cast<const GeoDetector*>(pipeline->detector("geo"));
  ASSERT_NE(geo_detector, nullptr);
  EXPECT_EQ(ask(*pipeline, "a@example.org", "81.1.0.1"), kDunno);
  EXPECT_EQ(ask(*pipeline, "a@example.org", "81.2.0.1"), kReject) << "1 country allowed";

  // The API's change: a limit of 3 for a@example.org, in force for the running pipeline.
  auto entries = geo_detector->customSettings()->current()->entries();
  entries[0].countries = 3;
  entries[0].trusted_ips = {"81.9.0.0/16"};
  entries[0].trusted_networks = {*parseNetwork("81.9.0.0/16")};
  ASSERT_TRUE(
      geo_detector->customSettings()->replace(GeoCustomSettings::fromEntries(std::move(entries))));
  EXPECT_EQ(ask(*pipeline, "b@example.org", "81.3.0.1"), kDunno);
  EXPECT_EQ(ask(*pipeline, "a@example.org", "81.9.0.1"), kDunno) << "a trusted network now";

  // Written to the file in its own format, so a reload reads the same.
  auto reread = GeoCustomSettings::load(file);
  ASSERT_TRUE(reread) << reread.error().message;
  ASSERT_EQ(reread->entries().size(), 1u);
  EXPECT_EQ(reread->entries()[0].countries, 3);
  EXPECT_EQ(reread->entries()[0].trusted_ips, std::vector<std::string>{"81.9.0.0/16"});
  const auto json = boost::json::serialize(reread->toJson());
  EXPECT_EQ(json,
            R"([{"comment":"","sender":"a@example.org","ips":0,"countries":3,)"
            R"("trusted_countries":[],"trusted_ips":["81.9.0.0/16"],"home_countries":null}])");

  // Without a configured file nothing can be changed, and nothing is loaded.
  GeoCustomSettingsSource unconfigured("", nullptr);
  EXPECT_EQ(unconfigured.current(), nullptr);
  auto refused = unconfigured.replace(GeoCustomSettings{});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("custom_settings_file is not set"), std::string::npos);
}

TEST(GeoCustomSettingsFile, OneEntryParsesLikeAnEntryOfTheFile) {
  auto entry = GeoCustomSettings::parseEntry(
      boost::json::parse(R"({"sender":" Bob@X ","ips":2,"home_countries":{"codes":["se"]}})"),
      "PATCH /modify: value");
  ASSERT_TRUE(entry) << entry.error().message;
  EXPECT_EQ(entry->sender, "bob@x");
  EXPECT_EQ(entry->home_codes, std::vector<std::string>{"SE"});
  auto bad = GeoCustomSettings::parseEntry(boost::json::parse(R"({"sender":"b","countries":-1})"),
                                           "PATCH /modify: value");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message,
            "PATCH /modify: value (sender b): countries must be a whole number from 0 to "
            "100000000");
}

TEST(GeoCustomSettingsFile, ErrorsNameTheEntryAndTheField) {
  const auto error = [](const std::string& json) {
    auto parsed = GeoCustomSettings::parse(json, "custom.json");
    return parsed ? std::string("parsed") : parsed.error().message;
  };
  EXPECT_EQ(error("{"), "custom.json: not valid JSON: incomplete JSON");
  EXPECT_EQ(error(R"({"rules":[]})"), R"(custom.json: expected {"data": [ ... ]})");
  EXPECT_EQ(error(R"({"data":[{"sender":"a@b","ips":"ten"}]})"),
            "custom.json: data[0] (sender a@b): ips must be a whole number from 0 to 100000000");
  EXPECT_EQ(error(R"({"data":[{"sender":"a@b"},{"ips":3}]})"),
            "custom.json: data[1]: sender is missing or empty");
  EXPECT_EQ(error(R"({"data":[{"sender":"a@b","trusted_ips":["10.0.0.300"]}]})"),
            "custom.json: data[0] (sender a@b): trusted_ips: '10.0.0.300' is not an IP address or "
            "network");
  EXPECT_EQ(error(R"({"data":[{"sender":"a@b","home_countries":{"codes":["Germany"]}}]})"),
            "custom.json: data[0] (sender a@b): home_countries.codes: 'GERMANY' is not a "
            "two-letter country code");
  EXPECT_EQ(error(R"({"data":[]})"), "parsed");
}

TEST_F(GeoTest, BlockPermanentMarksTheAccountInTheRegistry) {
  auto s = geo();
  s.max_ips = 0;
  s.block_permanent = true;
  auto pipeline = build(s);
  EXPECT_EQ(ask(*pipeline, "a@example.org", "81.1.0.1"), kReject);
  const auto mark = store_->getMark("a@example.org", kNow);
  ASSERT_TRUE(mark && *mark);
  EXPECT_EQ((*mark)->detector, "geo");
  EXPECT_FALSE((*mark)->expires.has_value());
  EXPECT_NE((*mark)->evidence.find(R"("foreign_ips":1)"), std::string::npos) << (*mark)->evidence;
  // Far beyond the TTL the registry still answers.
  EXPECT_EQ(ask(*pipeline, "a@example.org", "81.1.0.1", kNow + std::chrono::hours(100)),
            "action=REJECT 5.7.1 This account is blocked; contact your support");
}

TEST_F(GeoTest, ConcurrentRequestsForOneAccountLoseNoUpdate) {
  auto s = geo();
  s.max_ips = 1000000;
  auto pipeline = build(s);
  constexpr int kThreads = 4, kPerThread = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const auto n = t * kPerThread + i;
        ask(*pipeline, "busy@example.org",
            "81.6." + std::to_string(n / 250) + "." + std::to_string(n % 250));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const auto view = *store_->view("busy@example.org", kNow);
  std::size_t ips = 0;
  for (const auto& set : view.sets) {
    if (set.name == "geo:ips") ips = set.entries.size();
  }
  EXPECT_EQ(ips, static_cast<std::size_t>(kThreads * kPerThread));
}

}  // namespace
}  // namespace saslguard::engine
