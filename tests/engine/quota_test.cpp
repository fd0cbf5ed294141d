// quota_test.cpp — the quota detector as a specification, through the real pipeline and the real
// embedded store with an injected clock: tiers (HOLD from the quota, REJECT from hold_factor x
// quota, rejected messages not counted), sliding and several windows, per-account and per-domain
// quotas, stages, office-hours whitelist across a weekend and a DST change, blacklist, bounces,
// shadow mode, marks, event-log rows, and a replay shaped like UVSQ's real incident.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "engine/detectors/quota.hpp"
#include "engine/office_hours.hpp"
#include "engine/pipeline.hpp"
#include "protocol/parser.hpp"
#include "store/embedded_store.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::engine {
namespace {

using testing::TempDir;

const TimePoint kNow = fromUnixMs(1'790'000'000'000);  // Mon 2026-09-21 14:13 UTC
constexpr std::string_view kDunno = "action=DUNNO";
constexpr std::string_view kHold = "action=HOLD Quota exceeded, message held for review";
constexpr std::string_view kReject =
    "action=REJECT 5.7.1 Recipient quota exceeded; contact your support";

TimePoint unix(std::int64_t seconds) {
  return fromUnixMs(seconds * 1000);
}

class CollectingSink final : public eventlog::EventSink {
 public:
  bool offer(eventlog::EventRow&& row) noexcept override {
    rows.push_back(std::move(row));
    return true;
  }
  std::vector<eventlog::EventRow> rows;
};

// Settings with only the quota detector's options changed from the defaults, quota 10 in 24 h.
config::Settings quota10() {
  config::Settings settings;
  settings.detectors.quota.windows = {"24h:10"};
  return settings;
}

class QuotaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    level_ = spdlog::get_level();
    spdlog::set_level(spdlog::level::warn);  // the incident replay decides thousands of requests
    store::EmbeddedStoreOptions options;
    options.dir = dir_ / "state";
    options.start_flusher = false;
    store_ = std::move(*store::EmbeddedStore::open(options));
  }

  void TearDown() override { spdlog::set_level(level_); }

  Result<PipelinePtr> tryBuild(config::Settings settings) {
    return Pipeline::build(std::make_shared<const config::Settings>(std::move(settings)), *store_,
                           recent_, &events_);
  }
  PipelinePtr build(config::Settings settings) {
    auto pipeline = tryBuild(std::move(settings));
    EXPECT_TRUE(pipeline.has_value()) << pipeline.error().message;
    return pipeline ? *pipeline : nullptr;
  }

  // One policy request; returns the reply line.
  std::string ask(const Pipeline& pipeline, const std::string& attributes, TimePoint now = kNow) {
    text_ = "request=smtpd_access_policy\n" + attributes + "\n\n";
    protocol::RequestParser parser;
    EXPECT_EQ(parser.parse(text_, request_).status, protocol::ParseStatus::Complete);
    std::string reply;
    pipeline.decide(request_, now, reply);
    return reply.substr(0, reply.size() - 2);
  }

  // A message of `recipients` at END-OF-MESSAGE, as Postfix sends it from
  // smtpd_end_of_data_restrictions; `extra` ("name=value" lines) replaces or adds attributes.
  std::string message(const Pipeline& pipeline, const std::string& account, int recipients,
                      TimePoint now = kNow, const std::string& extra = "") {
    std::vector<std::pair<std::string, std::string>> attributes{
        {"protocol_state", "END-OF-MESSAGE"},
        {"sasl_username", account},
        {"sender", account},
        {"client_address", "192.0.2.1"},
        {"recipient_count", std::to_string(recipients)}};
    std::istringstream lines(extra);
    for (std::string line; std::getline(lines, line);) {
      const auto eq = line.find('=');
      const auto name = line.substr(0, eq);
      auto it = std::find_if(attributes.begin(), attributes.end(),
                             [&](const auto& a) { return a.first == name; });
      if (it == attributes.end()) it = attributes.insert(attributes.end(), {name, ""});
      it->second = line.substr(eq + 1);
    }
    std::string text;
    for (const auto& [name, value] : attributes) text += name + "=" + value + "\n";
    text.pop_back();
    return ask(pipeline, text, now);
  }

  // The account's total in the counter of `window_s`, as the store keeps it.
  std::uint64_t total(const std::string& account, std::uint32_t window_s = 86400,
                      TimePoint now = kNow) {
    auto view = store_->view(account, now);
    EXPECT_TRUE(view.has_value());
    for (const auto& counter : view->counters) {
      if (counter.name == "quota:" + std::to_string(window_s)) return counter.total;
    }
    return 0;
  }

  std::filesystem::path writeFile(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    std::ofstream(path) << text;
    return path;
  }

  spdlog::level::level_enum level_ = spdlog::level::info;
  TempDir dir_;
  std::unique_ptr<store::EmbeddedStore> store_;
  RecentDecisions recent_{1000};
  CollectingSink events_;
  std::string text_;
  protocol::Request request_;
};

// ---- tiers -----------------------------------------------------------------------------------

TEST_F(QuotaTest, HoldsFromTheQuotaAndRejectsFromTwiceTheQuotaCountingTheCurrentMessage) {
  auto pipeline = build(quota10());
  const std::string a = "alice@example.org";
  EXPECT_EQ(message(*pipeline, a, 3), kDunno);  // 3
  EXPECT_EQ(message(*pipeline, a, 3), kDunno);  // 6
  EXPECT_EQ(message(*pipeline, a, 3), kDunno);  // 9
  EXPECT_EQ(message(*pipeline, a, 3), kHold);   // 12 >= 10: held, and counted
  EXPECT_EQ(message(*pipeline, a, 3), kHold);   // 15
  EXPECT_EQ(message(*pipeline, a, 3), kHold);   // 18
  EXPECT_EQ(total(a), 18u);
  EXPECT_EQ(message(*pipeline, a, 3), kReject);  // 21 >= 20: rejected, not counted
  EXPECT_EQ(total(a), 18u);
  EXPECT_EQ(message(*pipeline, a, 1), kHold);    // 19: a small message is held again
  EXPECT_EQ(message(*pipeline, a, 1), kReject);  // 20 >= 20
  EXPECT_EQ(total(a), 19u);
  // Another account is not affected.
  EXPECT_EQ(message(*pipeline, "bob@example.org", 3), kDunno);

  const auto held = recent_.forAccount(a, 10);
  ASSERT_FALSE(held.empty());
  EXPECT_EQ(held.front().decided_by, "quota");
}

TEST_F(QuotaTest, HoldFactorAndTextsAreConfigurable) {
  auto settings = quota10();
  settings.detectors.quota.hold_factor = "1.5";
  settings.detectors.quota.hold_text = "HOLD quota exceeded";
  settings.detectors.quota.action = "DEFER";
  settings.detectors.quota.reply_text = "4.7.1 max quota exceeded";
  auto pipeline = build(settings);
  EXPECT_EQ(message(*pipeline, "a@example.org", 10), "action=HOLD HOLD quota exceeded");
  EXPECT_EQ(message(*pipeline, "a@example.org", 4), "action=HOLD HOLD quota exceeded");  // 14
  EXPECT_EQ(message(*pipeline, "a@example.org", 1), "action=DEFER 4.7.1 max quota exceeded");
}

TEST_F(QuotaTest, TheWindowSlides) {
  auto pipeline = build(quota10());
  const std::string a = "alice@example.org";
  EXPECT_EQ(message(*pipeline, a, 9, kNow), kDunno);
  EXPECT_EQ(message(*pipeline, a, 3, kNow + std::chrono::hours(1)), kHold);  // 12
  // 24 h after the first message it has left the window (granularity 1 % = 864 s).
  EXPECT_EQ(message(*pipeline, a, 3, kNow + std::chrono::hours(24) + std::chrono::seconds(864)),
            kDunno);  // 3 + 3
  // 26 h: the 1 h message has left too; 3 + 3.
  EXPECT_EQ(message(*pipeline, a, 3, kNow + std::chrono::hours(26)), kDunno);
}

TEST_F(QuotaTest, SeveralWindowsTheMostSevereTierWins) {
  config::Settings settings;
  settings.detectors.quota.windows = {"24h:100", "1h:10"};
  auto pipeline = build(settings);
  const std::string a = "alice@example.org";
  EXPECT_EQ(message(*pipeline, a, 9, kNow), kDunno);
  EXPECT_EQ(message(*pipeline, a, 3, kNow), kHold);  // 1h: 12 >= 10
  EXPECT_EQ(total(a, 3600), 12u);
  EXPECT_EQ(total(a, 86400), 12u);
  // Two hours later the 1 h window is empty again; the 24 h one still holds 12.
  auto later = kNow + std::chrono::hours(2);
  EXPECT_EQ(message(*pipeline, a, 9, later), kDunno);
  EXPECT_EQ(total(a, 86400, later), 21u);
  // Rejected by the 1 h window (9 + 11 = 20 >= 2 x 10): added to no window, not even to the
  // 24 h one, which on its own would have let it through (32 < 200).
  EXPECT_EQ(message(*pipeline, a, 11, later), kReject);
  EXPECT_EQ(total(a, 3600, later), 9u);
  EXPECT_EQ(total(a, 86400, later), 21u);
  // The 24 h window holds on its own once it reaches 100.
  for (int hour = 4; hour < 14; ++hour) {
    message(*pipeline, a, 8, kNow + std::chrono::hours(hour));
  }
  EXPECT_EQ(total(a, 86400, kNow + std::chrono::hours(14)), 101u);
  EXPECT_EQ(message(*pipeline, a, 1, kNow + std::chrono::hours(14)), kHold);
}

TEST_F(QuotaTest, BadWindowsAndFactorsAreConfigurationErrors) {
  for (const auto& windows : std::vector<std::vector<std::string>>{
           {}, {"24h"}, {"24x:10"}, {"24h:0"}, {"0h:10"}, {"30s:10"}, {"24h:10", "1d:5"}}) {
    auto settings = quota10();
    settings.detectors.quota.windows = windows;
    EXPECT_FALSE(tryBuild(settings).has_value()) << ::testing::PrintToString(windows);
  }
  for (const auto& factor : {"0.5", "x", "", "1.2345", "-2"}) {
    auto settings = quota10();
    settings.detectors.quota.hold_factor = factor;
    auto built = tryBuild(settings);
    ASSERT_FALSE(built.has_value()) << factor;
    EXPECT_NE(built.error().message.find("detectors.quota.hold_factor"), std::string::npos);
  }
  EXPECT_EQ(*parseHoldFactor("1.5"), 1500u);
  EXPECT_EQ(*parseHoldFactor("2"), 2000u);
  EXPECT_EQ(parseQuotaWindow("90m:300")->window_s, 5400u);
}

// ---- quotas per account and domain -----------------------------------------------------------

TEST_F(QuotaTest, AccountBeatsDomainBeatsDefaultFromConfigAndFile) {
  auto settings = quota10();
  settings.detectors.quota.accounts = {"Bulk@Example.org:100", "@example.net:50"};
  settings.detectors.quota.overrides_file =
      writeFile("quotas",
                "# account-or-@domain quota\nvip@example.net 30  # a person\n\n"
                "@example.com 20\n")
          .string();
  auto pipeline = build(settings);
  EXPECT_EQ(message(*pipeline, "alice@example.org", 10), kHold);  // default 10
  EXPECT_EQ(message(*pipeline, "bulk@example.org", 99), kDunno);
  EXPECT_EQ(message(*pipeline, "bulk@example.org", 1), kHold);  // 100
  EXPECT_EQ(message(*pipeline, "bob@example.net", 49), kDunno);
  EXPECT_EQ(message(*pipeline, "bob@example.net", 1), kHold);  // 50
  EXPECT_EQ(message(*pipeline, "vip@example.net", 29), kDunno);
  EXPECT_EQ(message(*pipeline, "vip@example.net", 1), kHold);  // 30, not the domain's 50
  EXPECT_EQ(message(*pipeline, "carol@example.com", 19), kDunno);
  EXPECT_EQ(message(*pipeline, "carol@example.com", 21), kReject);  // 40 >= 2 x 20
}

TEST_F(QuotaTest, TheOverridesFileIsReadAgainWhenThePipelineIsRebuilt) {
  auto settings = quota10();
  const auto file = writeFile("quotas", "bulk@example.org 100\n");
  settings.detectors.quota.overrides_file = file.string();
  auto pipeline = build(settings);
  EXPECT_EQ(message(*pipeline, "bulk@example.org", 50), kDunno);

  std::ofstream(file) << "bulk@example.org 40";                 // no newline at the end: still read
  pipeline = build(settings);                                   // what SIGHUP does
  EXPECT_EQ(message(*pipeline, "bulk@example.org", 1), kHold);  // 51 >= 40
}

TEST_F(QuotaTest, OverridesFileErrorsNameTheFileAndLine) {
  auto settings = quota10();
  const auto file = writeFile("quotas", "# fine\nok@example.org 5\nbroken@example.org lots\n");
  settings.detectors.quota.overrides_file = file.string();
  auto built = tryBuild(settings);
  ASSERT_FALSE(built.has_value());
  EXPECT_NE(built.error().message.find(file.string() + ":3:"), std::string::npos)
      << built.error().message;

  settings.detectors.quota.overrides_file = (dir_ / "missing").string();
  built = tryBuild(settings);
  ASSERT_FALSE(built.has_value());
  EXPECT_NE(built.error().message.find("detectors.quota.overrides_file"), std::string::npos);
}

TEST_F(QuotaTest, AnOverrideScalesEveryWindow) {
  config::Settings settings;
  settings.detectors.quota.windows = {"24h:100", "1h:10"};
  settings.detectors.quota.accounts = {"bulk@example.org:1000"};  // x10: 1 h quota 100
  auto pipeline = build(settings);
  EXPECT_EQ(message(*pipeline, "bulk@example.org", 99), kDunno);
  EXPECT_EQ(message(*pipeline, "bulk@example.org", 1), kHold);
}

TEST_F(QuotaTest, WithStrippedDomainsDomainQuotasUseTheLoginsDomain) {
  auto settings = quota10();
  settings.identity.strip_domain = true;
  settings.detectors.quota.accounts = {"@example.net:50"};
  auto pipeline = build(settings);
  EXPECT_EQ(message(*pipeline, "bob@example.net", 20), kDunno);
  EXPECT_EQ(total("bob"), 20u);
}

// ---- stages ----------------------------------------------------------------------------------

TEST_F(QuotaTest, OnlyEndOfMessageAndDataCountByDefault) {
  auto pipeline = build(quota10());
  const std::string base = "sasl_username=a@example.org\nrecipient_count=50\n";
  for (const auto* stage : {"CONNECT", "EHLO", "MAIL", "RCPT", "VRFY", "ETRN"}) {
    EXPECT_EQ(ask(*pipeline, base + "protocol_state=" + stage), kDunno) << stage;
  }
  EXPECT_EQ(store_->stats().accounts, 0u);                           // nothing was even planned
  EXPECT_EQ(ask(*pipeline, base + "protocol_state=DATA"), kReject);  // 50 >= 20
  EXPECT_TRUE(events_.rows.size() == 1u);
}

TEST_F(QuotaTest, ARecipientCountOfZeroOrGarbageCountsNothing) {
  auto pipeline = build(quota10());
  for (const auto* count : {"0", "", "many", "-3", "12x"}) {
    EXPECT_EQ(ask(*pipeline,
                  "protocol_state=END-OF-MESSAGE\nsasl_username=a@example.org\n"
                  "recipient_count=" +
                      std::string(count)),
              kDunno)
        << count;
  }
  EXPECT_EQ(total("a@example.org"), 0u);
  EXPECT_TRUE(events_.rows.empty());
}

TEST_F(QuotaTest, CountAtRcptCountsOnePerRecipientAndIgnoresEndOfMessage) {
  auto settings = quota10();
  settings.detectors.quota.count_at = "rcpt";
  auto pipeline = build(settings);
  const std::string rcpt = "protocol_state=RCPT\nsasl_username=a@example.org\nrecipient=x@y.z";
  for (int i = 1; i < 10; ++i) EXPECT_EQ(ask(*pipeline, rcpt), kDunno) << i;
  EXPECT_EQ(message(*pipeline, "a@example.org", 500), kDunno);  // not counted at this stage
  EXPECT_EQ(ask(*pipeline, rcpt), kHold);                       // the 10th recipient
  EXPECT_EQ(total("a@example.org"), 10u);
}

// ---- office hours, whitelist, blacklist --------------------------------------------------------

// Europe/Paris: Friday 2026-03-27 is CET (UTC+1); the clocks go forward on Sunday the 29th, so
// Monday 2026-03-30 is CEST (UTC+2).
TEST_F(QuotaTest, TheWhitelistAppliesOnlyInOfficeHoursInTheConfiguredTimeZone) {
  auto settings = quota10();
  for (int i = 0; i < 10; ++i) {
    settings.detectors.quota.whitelist_accounts.push_back("Newsletter" + std::to_string(i) +
                                                          "@Example.org");
  }
  settings.detectors.quota.time_zone = "Europe/Paris";
  auto pipeline = build(settings);
  int step = 0;  // one account per step, so each starts from zero
  const auto counted = [&](std::int64_t unix_s) {
    const auto account = "newsletter" + std::to_string(step++) + "@example.org";
    message(*pipeline, account, 5, unix(unix_s));
    return total(account, 86400, unix(unix_s)) == 5;
  };
  EXPECT_FALSE(counted(1774637999));  // Fri 19:59:59 CET (18:59:59 UTC): office hours
  EXPECT_TRUE(counted(1774638000));   // Fri 20:00:00 CET
  EXPECT_TRUE(counted(1774688400));   // Sat 10:00 CET: weekend (UVSQ counted Saturday as work)
  EXPECT_TRUE(counted(1774846799));   // Mon 06:59:59 CEST = 04:59:59 UTC
  EXPECT_FALSE(counted(1774846800));  // Mon 07:00 CEST = 05:00 UTC, after the DST change
  EXPECT_TRUE(counted(1774245599));   // the Monday before, 06:59:59 CET = 05:59:59 UTC
  EXPECT_FALSE(counted(1774245600));  // 07:00 CET = 06:00 UTC
  EXPECT_FALSE(counted(1792994400));  // Mon 2026-10-26 07:00 CET, after the change back
  EXPECT_TRUE(counted(1792994399));
}

TEST_F(QuotaTest, SendersAndNetworksCanBeWhitelistedToo) {
  auto settings = quota10();
  settings.detectors.quota.whitelist_senders = {"Robot@Example.org"};
  settings.detectors.quota.whitelist_networks = {"198.51.100.0/24"};
  settings.detectors.quota.office_hours = "always";
  auto pipeline = build(settings);
  EXPECT_EQ(message(*pipeline, "a@example.org", 50, kNow, "sender=robot@EXAMPLE.org"), kDunno);
  EXPECT_EQ(message(*pipeline, "a@example.org", 50, kNow, "client_address=198.51.100.7"), kDunno);
  EXPECT_EQ(total("a@example.org"), 0u);
}

TEST_F(QuotaTest, TheBlacklistHoldsAtAnyTimeAndCountsNothing) {
  auto settings = quota10();
  settings.detectors.quota.blacklist_accounts = {"Spammer@Example.org"};
  settings.detectors.quota.blacklist_senders = {"fake@example.net"};
  settings.detectors.quota.blacklist_networks = {"203.0.113.0/24"};
  settings.detectors.quota.whitelist_accounts = {"spammer@example.org"};  // blacklist first
  settings.detectors.quota.office_hours = "always";
  auto pipeline = build(settings);
  const std::string held = "action=HOLD Blacklisted, message held for review";
  EXPECT_EQ(message(*pipeline, "spammer@example.org", 1), held);
  EXPECT_EQ(message(*pipeline, "spammer@example.org", 1, unix(1774688400)), held);  // Saturday
  EXPECT_EQ(message(*pipeline, "a@example.org", 1, kNow, "sender=FAKE@example.net"), held);
  EXPECT_EQ(message(*pipeline, "b@example.org", 1, kNow, "client_address=203.0.113.9"), held);
  EXPECT_EQ(total("spammer@example.org"), 0u);
  EXPECT_EQ(total("a@example.org"), 0u);

  settings.detectors.quota.blacklist_action = "REJECT";
  settings.detectors.quota.blacklist_text = "5.7.1 blacklisted";
  pipeline = build(settings);
  EXPECT_EQ(message(*pipeline, "spammer@example.org", 1), "action=REJECT 5.7.1 blacklisted");
}

TEST_F(QuotaTest, BadOfficeHoursAndTimeZonesAreConfigurationErrors) {
  for (const auto* hours :
       {"Mon-Fri", "Mon-Fri 07:00", "Xyz 07:00-19:59", "Mon 19:00-07:00", "Mon 24:00-25:00", ""}) {
    auto settings = quota10();
    settings.detectors.quota.office_hours = hours;
    EXPECT_FALSE(tryBuild(settings).has_value()) << hours;
  }
  for (const auto* zone : {"Europe/Nowhere", "../../etc/passwd", "/etc/localtime"}) {
    auto settings = quota10();
    settings.detectors.quota.time_zone = zone;
    EXPECT_FALSE(tryBuild(settings).has_value()) << zone;
  }
}

TEST(TimeZone, ReadsOffsetsAcrossDaylightSavingChanges) {
  auto paris = TimeZone::load("Europe/Paris");
  ASSERT_TRUE(paris.has_value()) << paris.error().message;
  EXPECT_EQ(paris->offsetAt(1774637999), 3600);  // March, CET
  EXPECT_EQ(paris->offsetAt(1774846800), 7200);  // after the change, CEST
  auto new_york = TimeZone::load("America/New_York");
  ASSERT_TRUE(new_york.has_value());
  EXPECT_EQ(new_york->offsetAt(1790000000), -4 * 3600);  // September, EDT
  EXPECT_EQ(new_york->offsetAt(1767225600), -5 * 3600);  // 2026-01-01, EST
  EXPECT_EQ(TimeZone::load("UTC")->offsetAt(1790000000), 0);
}

TEST(TimeZone, FollowsThePosixRuleAfterTheFilesLastTransition) {
  // Debian's files list transitions up to 2037; later times come from the file's TZ rule.
  auto paris = TimeZone::load("Europe/Paris");
  EXPECT_EQ(paris->offsetAt(2224756800), 7200);  // 2040-07-01 12:00 UTC
  EXPECT_EQ(paris->offsetAt(2209032000), 3600);  // 2040-01-01
  auto sydney = TimeZone::load("Australia/Sydney");
  EXPECT_EQ(sydney->offsetAt(2209032000), 11 * 3600);  // southern summer
  EXPECT_EQ(sydney->offsetAt(2224756800), 10 * 3600);
  EXPECT_EQ(TimeZone::load("Asia/Tokyo")->offsetAt(2224756800), 9 * 3600);
}

// The rules alone (as in a "slim" TZif file, which lists few transitions) give the same offsets
// as the transition tables, every half hour from 2026 to 2036.
TEST(TimeZone, PosixRulesAgreeWithTheTransitionTables) {
  for (const auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"Europe/Paris", "CET-1CEST,M3.5.0,M10.5.0/3"},
           {"America/New_York", "EST5EDT,M3.2.0,M11.1.0"},
           {"Australia/Sydney", "AEST-10AEDT,M10.1.0,M4.1.0/3"},
           {"Pacific/Chatham", "<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45"}}) {
    auto zone = TimeZone::load(name);
    ASSERT_TRUE(zone.has_value()) << name;
    auto rule = TimeZone::parsePosixRule(text);
    ASSERT_TRUE(rule.has_value()) << rule.error().message;
    int mismatches = 0;
    for (std::int64_t t = 1767225600; t < 2114380800; t += 1800) {
      if (rule->offsetAt(t) != zone->offsetAt(t) && ++mismatches < 3) {
        ADD_FAILURE() << name << " at " << t << ": " << rule->offsetAt(t) << " vs "
                      << zone->offsetAt(t);
      }
    }
    EXPECT_EQ(mismatches, 0) << name;
  }
  EXPECT_EQ(TimeZone::parsePosixRule("<+0330>-3:30")->std_offset, 3 * 3600 + 1800);
  EXPECT_EQ(TimeZone::parsePosixRule("<-03>3")->std_offset, -3 * 3600);
  for (const auto* bad : {"", "C-1", "CET", "CET-1CEST,M3.5.0", "CET-1CEST,M13.5.0,M10.5.0",
                          "CET-1CEST,M3.5.0,M10.5.0/x"}) {
    EXPECT_FALSE(TimeZone::parsePosixRule(bad).has_value()) << bad;
  }
}

TEST(OfficeHours, SeveralPeriodsAndWrappingDayRanges) {
  auto hours = OfficeHours::parse("Sat-Sun 10:00-11:59; Wed 00:00-00:00");
  ASSERT_TRUE(hours.has_value()) << hours.error().message;
  const auto utc = TimeZone::utc();
  EXPECT_TRUE(hours->contains(unix(1774692000), utc));   // Sat 2026-03-28 10:00 UTC
  EXPECT_FALSE(hours->contains(unix(1774699200), utc));  // Sat 12:00
  EXPECT_FALSE(hours->contains(kNow, utc));              // Monday
  EXPECT_TRUE(hours->contains(unix(1774396800), utc));   // Wed 2026-03-25 00:00 UTC
  EXPECT_FALSE(OfficeHours::parse("never")->contains(kNow, utc));
  EXPECT_TRUE(OfficeHours::parse("always")->contains(kNow, utc));
  EXPECT_TRUE(OfficeHours::parse("Fri-Mon 00:00-23:59")->contains(kNow, utc));
  EXPECT_TRUE(OfficeHours::parse("mon 7:00-19:59")->contains(kNow, utc));  // 14:13 UTC
  for (const auto* bad : {"Mon 7:0-19:59", "Mon 07:00-19:5", "Mon 07:00-19:60", "Mon -1:00-2:00"}) {
    EXPECT_FALSE(OfficeHours::parse(bad).has_value()) << bad;
  }
}

// ---- bounces, shadow, marks, event rows ------------------------------------------------------

TEST_F(QuotaTest, BouncesFromAnAuthenticatedUserAreCountedNotRejected) {
  auto pipeline = build(quota10());
  EXPECT_EQ(message(*pipeline, "a@example.org", 2, kNow, "sender="), kDunno);
  EXPECT_EQ(total("a@example.org"), 2u);
  ASSERT_EQ(events_.rows.size(), 1u);
  EXPECT_EQ(events_.rows[0].sender, "");
}

TEST_F(QuotaTest, ShadowModeCountsEveryMessageAndOnlyRecordsWhatItWouldHaveDone) {
  auto settings = quota10();
  settings.detectors.quota.shadow = true;
  settings.detectors.quota.mark_on = "hold";
  auto pipeline = build(settings);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(message(*pipeline, "a@example.org", 3), kDunno);
  EXPECT_EQ(total("a@example.org"), 30u);  // delivered, so counted, even past 2 x quota
  const auto record = recent_.forAccount("a@example.org", 1).at(0);
  ASSERT_EQ(record.verdicts.size(), 1u);
  EXPECT_EQ(record.verdicts[0].action, Action::Reject);
  EXPECT_TRUE(record.verdicts[0].shadow);
  EXPECT_FALSE(store_->getMark("a@example.org", kNow)->has_value());
}

TEST_F(QuotaTest, MarkOnHoldPutsTheAccountInTheCompromiseRegistry) {
  auto settings = quota10();
  settings.detectors.quota.mark_on = "hold";
  auto pipeline = build(settings);
  EXPECT_EQ(message(*pipeline, "a@example.org", 9), kDunno);
  EXPECT_FALSE(store_->getMark("a@example.org", kNow)->has_value());
  EXPECT_EQ(message(*pipeline, "a@example.org", 1), kHold);
  auto mark = store_->getMark("a@example.org", kNow);
  ASSERT_TRUE(mark->has_value());
  EXPECT_EQ((*mark)->detector, "quota");
  // From now on the registry answers, before any detector.
  EXPECT_EQ(message(*pipeline, "a@example.org", 1),
            "action=REJECT 5.7.1 This account is blocked; contact your support");
}

TEST_F(QuotaTest, MarkOnRejectWaitsForTheRejectTierAndNoneNeverMarks) {
  auto settings = quota10();
  settings.detectors.quota.mark_on = "reject";
  auto pipeline = build(settings);
  EXPECT_EQ(message(*pipeline, "a@example.org", 15), kHold);
  EXPECT_FALSE(store_->getMark("a@example.org", kNow)->has_value());
  EXPECT_EQ(message(*pipeline, "a@example.org", 5), kReject);
  EXPECT_TRUE(store_->getMark("a@example.org", kNow)->has_value());

  pipeline = build(quota10());  // mark_on = none, the default
  EXPECT_EQ(message(*pipeline, "b@example.org", 30), kReject);
  EXPECT_FALSE(store_->getMark("b@example.org", kNow)->has_value());
}

TEST_F(QuotaTest, EveryEvaluatedMessageOffersAnEventRowWithTheWindowTotal) {
  auto pipeline = build(quota10());
  message(*pipeline, "a@example.org", 4);
  message(*pipeline, "a@example.org", 8);   // 12: HOLD
  message(*pipeline, "a@example.org", 10);  // 22: REJECT, not counted
  ASSERT_EQ(events_.rows.size(), 3u);
  EXPECT_EQ(events_.rows[0].recipient_count, 4u);
  EXPECT_EQ(events_.rows[0].window_total, 4u);
  EXPECT_EQ(events_.rows[0].action, "DUNNO");
  EXPECT_EQ(events_.rows[1].window_total, 12u);
  EXPECT_EQ(events_.rows[1].action, "HOLD");
  EXPECT_EQ(events_.rows[2].recipient_count, 10u);
  EXPECT_EQ(events_.rows[2].window_total, 12u);  // what the window holds: the message is not in it
  EXPECT_EQ(events_.rows[2].action, "REJECT");
  EXPECT_EQ(events_.rows[2].sasl_username, "a@example.org");
  EXPECT_EQ(events_.rows[2].detector, "quota");
}

TEST_F(QuotaTest, LogCountsGivesUvsqsCountLineAtInfo) {
  std::ostringstream out;
  const auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "quota-test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out)));
  spdlog::set_level(spdlog::level::info);
  auto pipeline = build(quota10());
  message(*pipeline, "quiet@example.org", 2);  // log_counts = false: at debug only
  auto settings = quota10();
  settings.detectors.quota.log_counts = true;
  pipeline = build(settings);
  message(*pipeline, "alice@example.org", 2, kNow, "sender=Alice@Example.org");
  message(*pipeline, "alice@example.org", 3, kNow, "sender=");
  spdlog::set_default_logger(previous);
  EXPECT_EQ(out.str().find("quiet@"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("quota: alice@example.org/alice@example.org/192.0.2.1/2/2"),
            std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("quota: alice@example.org//192.0.2.1/3/5"), std::string::npos);
}

// ---- the incident ----------------------------------------------------------------------------

// UVSQ's Christmas 2019 incident (contrib/real-maillog-sample.log): two phished accounts sending
// ~10 recipients per message from ~80 IP addresses within minutes, among normal traffic. With
// quota 1500: HOLD exactly from a total of 1500, REJECT from 3000, nobody else affected.
TEST_F(QuotaTest, ReplayOfTheTwoPhishedAccountsIncident) {
  auto pipeline = build(config::Settings{});  // the defaults: 24h:1500, hold factor 2
  std::mt19937 random(2019);
  std::vector<std::string> normal;
  for (int i = 0; i < 50; ++i) normal.push_back("user" + std::to_string(i) + "@uvsq.fr");
  const std::vector<std::string> phished{"anabelle@uvsq.fr", "jdupont@uvsq.fr"};
  std::map<std::string, std::uint64_t> sent;      // recipients counted per phished account
  std::map<std::string, std::string> first_hold;  // "total at first HOLD"
  std::map<std::string, std::string> first_reject;

  TimePoint now = kNow;
  for (int step = 0; step < 4000; ++step) {
    now += std::chrono::milliseconds(60);  // 4 minutes in all
    if (random() % 3 == 0) {               // normal traffic: 1 to 5 recipients
      const auto& account = normal[random() % normal.size()];
      const auto ip = "198.51.100." + std::to_string(random() % 50 + 1);
      EXPECT_EQ(message(*pipeline, account, static_cast<int>(random() % 5 + 1), now,
                        "client_address=" + ip),
                kDunno)
          << account;
      continue;
    }
    const auto& account = phished[random() % 2];
    const auto ip = "203.0.113." + std::to_string(random() % 80 + 1);  // ~80 addresses
    const auto reply = message(*pipeline, account, 10, now, "client_address=" + ip);
    const auto would_be = sent[account] + 10;
    if (would_be < 1500) {
      ASSERT_EQ(reply, kDunno) << account << " at " << would_be;
      sent[account] = would_be;
    } else if (would_be < 3000) {
      ASSERT_EQ(reply, kHold) << account << " at " << would_be;
      if (!first_hold.contains(account)) first_hold[account] = std::to_string(would_be);
      sent[account] = would_be;
    } else {
      ASSERT_EQ(reply, kReject) << account << " at " << would_be;
      if (!first_reject.contains(account)) first_reject[account] = std::to_string(would_be);
    }
  }
  for (const auto& account : phished) {
    EXPECT_EQ(first_hold[account], "1500") << account;
    EXPECT_EQ(first_reject[account], "3000") << account;
    EXPECT_EQ(total(account, 86400, now), 2990u) << account;  // rejected messages not counted
  }
  for (const auto& account : normal) {
    EXPECT_LT(total(account, 86400, now), 1500u);
    EXPECT_TRUE(recent_.forAccount(account, 1).empty() ||
                recent_.forAccount(account, 1).at(0).action == Action::Dunno);
  }
}

}  // namespace
}  // namespace saslguard::engine
