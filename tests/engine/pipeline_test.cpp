// pipeline_test.cpp — the decision pipeline end to end on the real embedded store: identity,
// allow lists, the deny-list detector, severity, shadow mode, marks and the registry, and the
// plan → one store call → evaluate wiring. Time is injected; nothing sleeps.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <optional>

#include "engine/pipeline.hpp"
#include "metrics/metrics.hpp"
#include "protocol/parser.hpp"
#include "store/embedded_store.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::engine {
namespace {

using protocol::Action;
using testing::TempDir;

const TimePoint kNow = fromUnixMs(1'790'000'000'000);

// A detector with a fixed opinion, for severity and shadow cases.
class FixedDetector final : public Detector {
 public:
  FixedDetector(std::string_view name, Action action, bool mark = false, std::string text = "")
      : name_(name), action_(action), mark_(mark), text_(std::move(text)) {}
  std::string_view name() const override { return name_; }
  Verdict evaluate(const DetectorContext&, const DetectorResults&) const override {
    return Verdict{action_, name_, std::string(name_) + " says so", R"({"fixed":true})", text_,
                   mark_,   {}};
  }

 private:
  std::string_view name_;
  Action action_;
  bool mark_;
  std::string text_;
};

// Counts requests per account in the store and holds from the third one on.
class CountingDetector final : public Detector {
 public:
  std::string_view name() const override { return "counting"; }
  void plan(const DetectorContext&, store::Batch& batch) const override {
    batch.counters.push_back({"test:3600", 3600, 60, 1, std::nullopt});
  }
  Verdict evaluate(const DetectorContext&, const DetectorResults& results) const override {
    EXPECT_EQ(results.counters.size(), 1u);
    if (results.counters[0].total >= 3)
      return Verdict{Action::Hold, name(), "third", "{}", "", false, {}};
    return {};
  }
};

// Counts every message as 4 recipients (as a volume detector would), with no opinion.
class MessageCounter final : public Detector {
 public:
  std::string_view name() const override { return "volume"; }
  Verdict evaluate(const DetectorContext&, const DetectorResults&) const override {
    Verdict verdict;
    verdict.detector = name();
    verdict.counted = CountedMessage{4, 40};
    return verdict;
  }
};

// Keeps what the pipeline offers to the event log.
class CollectingSink final : public eventlog::EventSink {
 public:
  bool offer(eventlog::EventRow&& row) noexcept override {
    rows.push_back(std::move(row));
    return true;
  }
  std::vector<eventlog::EventRow> rows;
};

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::EmbeddedStoreOptions options;
    options.dir = dir_ / "state";
    options.start_flusher = false;
    store_ = std::move(*store::EmbeddedStore::open(options));
  }

  PipelinePtr build(config::Settings settings, std::vector<ConfiguredDetector> detectors,
                    eventlog::EventSink* events = nullptr) {
    auto pipeline =
        Pipeline::buildWith(std::make_shared<const config::Settings>(std::move(settings)), *store_,
                            recent_, std::move(detectors), events);
    EXPECT_TRUE(pipeline.has_value()) << pipeline.error().message;
    return *pipeline;
  }
  PipelinePtr buildConfigured(config::Settings settings) {
    auto pipeline = Pipeline::build(std::make_shared<const config::Settings>(std::move(settings)),
                                    *store_, recent_);
    EXPECT_TRUE(pipeline.has_value()) << pipeline.error().message;
    return *pipeline;
  }

  // Parses `attributes` (name=value lines) as a request and returns the reply line.
  std::string ask(const Pipeline& pipeline, const std::string& attributes, TimePoint now = kNow) {
    text_ = "request=smtpd_access_policy\nprotocol_state=RCPT\n" + attributes + "\n\n";
    protocol::RequestParser parser;
    const auto outcome = parser.parse(text_, request_);
    EXPECT_EQ(outcome.status, protocol::ParseStatus::Complete);
    std::string reply;
    pipeline.decide(request_, now, reply);
    EXPECT_EQ(reply.substr(reply.size() - 2), "\n\n");
    return reply.substr(0, reply.size() - 2);
  }

  static std::vector<ConfiguredDetector> detectors(std::vector<std::pair<Detector*, bool>> list) {
    std::vector<ConfiguredDetector> out;
    for (auto& [detector, shadow] : list) out.push_back({DetectorPtr(detector), shadow});
    return out;
  }

  TempDir dir_;
  std::unique_ptr<store::EmbeddedStore> store_;
  RecentDecisions recent_{1000};
  std::string text_;
  protocol::Request request_;
};

TEST_F(PipelineTest, UnauthenticatedRequestsAreNotOursAndTouchNoState) {
  auto pipeline = build({}, detectors({{new FixedDetector("always", Action::Reject), false}}));
  EXPECT_EQ(ask(*pipeline, "sasl_username=\nsender=someone@example.org"), "action=DUNNO");
  EXPECT_EQ(recent_.size(), 0u);
  EXPECT_EQ(store_->stats().accounts, 0u);
}

TEST_F(PipelineTest, IdentityIsLowerCasedTrimmedAndOptionallyTheSenderOrWithoutDomain) {
  auto pipeline = build({}, detectors({{new CountingDetector(), false}}));
  ask(*pipeline, "sasl_username=  Alice@Example.ORG ");
  ASSERT_EQ(recent_.forAccount("alice@example.org", 10).size(), 1u);

  config::Settings bySender;
  bySender.identity.source = "sender";
  bySender.identity.strip_domain = true;
  pipeline = build(bySender, {});
  ask(*pipeline, "sasl_username=login1\nsender=Bob.Smith@Example.org");
  EXPECT_EQ(recent_.forAccount("bob.smith", 10).size(), 1u);
  // A bounce (null sender) cannot be attributed in sender mode: skipped, never rejected.
  EXPECT_EQ(ask(*pipeline, "sasl_username=login1\nsender="), "action=DUNNO");
}

TEST_F(PipelineTest, DenyListDetectorMatchesAccountsSendersAndNetworks) {
  config::Settings settings;
  settings.detectors.denylist.accounts = {"Bad@Example.org"};
  settings.detectors.denylist.senders = {"spoof@example.net"};
  settings.detectors.denylist.networks = {"203.0.113.0/24", "2001:db8::/32"};
  settings.detectors.denylist.action = "HOLD";
  auto pipeline = buildConfigured(settings);
  EXPECT_EQ(ask(*pipeline, "sasl_username=bad@example.org"), "action=HOLD Message held for review");
  EXPECT_EQ(ask(*pipeline, "sasl_username=ok@example.org\nsender=SPOOF@example.net"),
            "action=HOLD Message held for review");
  EXPECT_EQ(ask(*pipeline, "sasl_username=ok@example.org\nclient_address=203.0.113.77"),
            "action=HOLD Message held for review");
  EXPECT_EQ(ask(*pipeline, "sasl_username=ok@example.org\nclient_address=2001:db8::1"),
            "action=HOLD Message held for review");
  EXPECT_EQ(ask(*pipeline, "sasl_username=ok@example.org\nclient_address=198.51.100.1"),
            "action=DUNNO");
}

TEST_F(PipelineTest, AllowListsTakeARequestOutOfEvaluation) {
  config::Settings settings;
  settings.lists.allow_accounts = {"Service@Example.org"};
  settings.lists.allow_networks = {"10.0.0.0/8"};
  auto pipeline =
      build(settings, detectors({{new FixedDetector("always", Action::Reject), false}}));
  EXPECT_EQ(ask(*pipeline, "sasl_username=service@example.org"), "action=DUNNO");
  EXPECT_EQ(ask(*pipeline, "sasl_username=x@example.org\nclient_address=10.1.2.3"), "action=DUNNO");
  EXPECT_EQ(ask(*pipeline, "sasl_username=x@example.org\nclient_address=192.0.2.1"),
            "action=REJECT 5.7.1 Sending from this account is blocked; contact your support");
  EXPECT_EQ(recent_.forAccount("service@example.org", 1).at(0).outcome, "allowlisted");
}

TEST_F(PipelineTest, TheMostSevereVerdictWinsWithItsOwnText) {
  auto pipeline = build(
      {}, detectors({{new FixedDetector("hold", Action::Hold), false},
                     {new FixedDetector("reject", Action::Reject, false, "5.7.0 nope"), false},
                     {new FixedDetector("defer", Action::Defer), false}}));
  EXPECT_EQ(ask(*pipeline, "sasl_username=a@example.org"), "action=REJECT 5.7.0 nope");
  const auto record = recent_.forAccount("a@example.org", 1).at(0);
  EXPECT_EQ(record.decided_by, "reject");
  EXPECT_EQ(record.verdicts.size(), 3u);
  EXPECT_EQ(record.action, Action::Reject);
  EXPECT_EQ(record.stage, protocol::Stage::Rcpt);
}

TEST_F(PipelineTest, ShadowDetectorsAreEvaluatedLoggedAndCountedButNeverEnforced) {
  const auto shadowBefore = [] {
    for (const auto& s : metrics::snapshot()) {
      if (s.name == "shadow_verdicts_total") return s.value;
    }
    return std::uint64_t{0};
  }();
  auto pipeline = build({}, detectors({{new FixedDetector("strict", Action::Reject, true), true},
                                       {new FixedDetector("mild", Action::Hold), false}}));
  EXPECT_EQ(ask(*pipeline, "sasl_username=a@example.org"), "action=HOLD Message held for review");
  const auto record = recent_.forAccount("a@example.org", 1).at(0);
  ASSERT_EQ(record.verdicts.size(), 2u);
  EXPECT_TRUE(record.verdicts[0].shadow);
  EXPECT_EQ(record.verdicts[0].action, Action::Reject);
  EXPECT_EQ(formatDecision(record, false).find("strict:REJECT(shadow)") != std::string::npos, true);
  // A shadow verdict never marks the account.
  EXPECT_FALSE(store_->getMark("a@example.org", kNow)->has_value());
  std::uint64_t shadowAfter = 0;
  for (const auto& s : metrics::snapshot()) {
    if (s.name == "shadow_verdicts_total") shadowAfter = s.value;
  }
  EXPECT_EQ(shadowAfter, shadowBefore + 1);
}

TEST_F(PipelineTest, AMarkingVerdictPutsTheAccountInTheRegistryWhichThenAnswersAlone) {
  auto* counting = new CountingDetector();
  auto pipeline = build(
      {}, detectors({{new FixedDetector("marker", Action::Hold, true), false}, {counting, false}}));
  EXPECT_EQ(ask(*pipeline, "sasl_username=victim@example.org"),
            "action=HOLD Message held for review");
  EXPECT_TRUE(recent_.forAccount("victim@example.org", 1).at(0).new_mark);
  const auto mark = store_->getMark("victim@example.org", kNow);
  ASSERT_TRUE(mark.has_value() && mark->has_value());
  EXPECT_EQ((*mark)->detector, "marker");
  EXPECT_EQ((*mark)->evidence, R"({"fixed":true})");
  // From now on the registry answers (registry.action), and detectors do not run or count.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(ask(*pipeline, "sasl_username=victim@example.org"),
              "action=REJECT 5.7.1 This account is blocked; contact your support");
  }
  EXPECT_EQ(recent_.forAccount("victim@example.org", 1).at(0).outcome, "registry");
  ASSERT_TRUE(*store_->clear("victim@example.org", {"test", "cleared"}, kNow));
  const auto view = store_->view("victim@example.org", kNow);
  ASSERT_TRUE(view.has_value());
  ASSERT_EQ(view->counters.size(), 1u);
  EXPECT_EQ(view->counters[0].total, 1u);  // only the first request was counted
}

TEST_F(PipelineTest, DetectorsSeeTheResultsOfTheOperationsTheyPlanned) {
  auto pipeline = build({}, detectors({{new FixedDetector("quiet", Action::Dunno), false},
                                       {new CountingDetector(), false}}));
  EXPECT_EQ(ask(*pipeline, "sasl_username=c@example.org"), "action=DUNNO");
  EXPECT_EQ(ask(*pipeline, "sasl_username=c@example.org"), "action=DUNNO");
  EXPECT_EQ(ask(*pipeline, "sasl_username=c@example.org"), "action=HOLD Message held for review");
  // Another account has its own count; an hour later the window has moved on.
  EXPECT_EQ(ask(*pipeline, "sasl_username=d@example.org"), "action=DUNNO");
  EXPECT_EQ(ask(*pipeline, "sasl_username=c@example.org", kNow + std::chrono::hours(2)),
            "action=DUNNO");
}

TEST_F(PipelineTest, BadListEntriesAreConfigurationErrors) {
  config::Settings settings;
  settings.lists.allow_networks = {"10.0.0.0/33"};
  auto pipeline =
      Pipeline::build(std::make_shared<const config::Settings>(settings), *store_, recent_);
  ASSERT_FALSE(pipeline.has_value());
  EXPECT_NE(pipeline.error().message.find("lists.allow_networks"), std::string::npos);
}

TEST_F(PipelineTest, CountedMessagesReachTheEventLogWithTheFinalAction) {
  CollectingSink sink;
  auto pipeline = build({}, detectors({{new MessageCounter(), true}}), &sink);
  ask(*pipeline,
      "sasl_username=Counted@Example.org\nsender=counted@example.org\nclient_address=192.0.2.4");
  ASSERT_EQ(sink.rows.size(), 1u);
  EXPECT_EQ(sink.rows[0].sasl_username, "counted@example.org");
  EXPECT_EQ(sink.rows[0].sender, "counted@example.org");
  EXPECT_EQ(sink.rows[0].client_address, "192.0.2.4");
  EXPECT_EQ(sink.rows[0].recipient_count, 4u);
  EXPECT_EQ(sink.rows[0].window_total, 40u);
  EXPECT_EQ(sink.rows[0].action, "DUNNO");
  EXPECT_EQ(sink.rows[0].detector, "volume");
  EXPECT_TRUE(sink.rows[0].shadow);
  EXPECT_EQ(sink.rows[0].ts, kNow);

  pipeline = build({},
                   detectors({{new MessageCounter(), false},
                              {new FixedDetector("deny", Action::Reject), false}}),
                   &sink);
  ask(*pipeline, "sasl_username=counted@example.org");
  ASSERT_EQ(sink.rows.size(), 2u);
  EXPECT_EQ(sink.rows[1].action, "REJECT");
  EXPECT_FALSE(sink.rows[1].shadow);
}

TEST(DecisionLog, TextAndJsonFormsCarryTheWholeRecord) {
  DecisionRecord record;
  record.at = kNow;
  record.account = "alice@example.org";
  record.stage = protocol::Stage::Rcpt;
  record.client_address = "192.0.2.1";
  record.instance = "1.2.3.0";
  record.outcome = "evaluated";
  record.verdicts = {{"denylist", Action::Reject, "account \"listed\"", false}};
  record.action = Action::Reject;
  record.decided_by = "denylist";
  record.duration_us = 7;
  EXPECT_EQ(
      formatDecision(record, false),
      "decision account=alice@example.org stage=RCPT client=192.0.2.1 instance=1.2.3.0 "
      "action=REJECT by=denylist reason=\"account \\\"listed\\\"\" verdicts=denylist:REJECT us=7");
  EXPECT_EQ(
      formatDecision(record, true),
      R"({"msg":"decision","account":"alice@example.org","stage":"RCPT","client_address":"192.0.2.1",)"
      R"("instance":"1.2.3.0","outcome":"evaluated","action":"REJECT","decided_by":"denylist",)"
      R"("new_mark":false,"duration_us":7,"at_ms":1790000000000,"verdicts":[{"detector":"denylist",)"
      R"("action":"REJECT","reason":"account \"listed\"","shadow":false}]})");
}

TEST(RecentDecisions, KeepsOnlyTheNewestWithinCapacity) {
  RecentDecisions recent(32);  // 2 per shard
  for (int i = 0; i < 10; ++i) {
    DecisionRecord record;
    record.account = "same@example.org";
    record.duration_us = static_cast<std::uint32_t>(i);
    recent.add(record);
  }
  const auto kept = recent.forAccount("same@example.org", 10);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].duration_us, 9u);
  EXPECT_EQ(kept[1].duration_us, 8u);
}

std::uint64_t counterValue(std::string_view name) {
  for (const auto& sample : metrics::snapshot()) {
    if (sample.name == name) return sample.value;
  }
  ADD_FAILURE() << "no counter " << name;
  return 0;
}

// A failed identity mapping is one failed search (the mapper counts it) and one request answered
// with ldap.failure_action (the pipeline counts that): each once, in its own counter, so
// backend_errors_total{backend="ldap"} counts searches, not searches plus replies.
TEST_F(PipelineTest, AFailedLdapMappingCountsOneFailedSearchAndOneFailureReply) {
  config::Settings settings;
  settings.ldap.enabled = true;
  settings.ldap.uris = {"ldap://127.0.0.1:1"};  // nothing listens there: refused at once
  settings.ldap.base_dn = "dc=example,dc=org";
  settings.ldap.failure_action = "DEFER";
  auto pipeline = buildConfigured(settings);
  text_ = "request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=alice@example.org\n\n";
  protocol::RequestParser parser;
  ASSERT_EQ(parser.parse(text_, request_).status, protocol::ParseStatus::Complete);
  const auto searches = counterValue("ldap_failures_total");
  const auto replies = counterValue("ldap_failure_replies_total");

  ASSERT_TRUE(pipeline->needsLookups(request_, kNow));
  boost::asio::io_context context;
  std::optional<Lookups> looked_up;
  boost::asio::co_spawn(
      context, pipeline->lookups(request_, kNow, Enrichers{}),
      [&](std::exception_ptr, Lookups lookups) { looked_up = std::move(lookups); });
  context.run_for(std::chrono::seconds(30));
  ASSERT_TRUE(looked_up.has_value());
  EXPECT_TRUE(looked_up->failed);
  std::string reply;
  EXPECT_EQ(pipeline->decide(request_, kNow, reply, &*looked_up), Action::Defer);
  EXPECT_EQ(counterValue("ldap_failures_total") - searches, 1u);
  EXPECT_EQ(counterValue("ldap_failure_replies_total") - replies, 1u);

  // Not looked up at all (decide() without lookups): a failure reply, and no search to count.
  reply.clear();
  EXPECT_EQ(pipeline->decide(request_, kNow, reply), Action::Defer);
  EXPECT_EQ(counterValue("ldap_failures_total") - searches, 1u);
  EXPECT_EQ(counterValue("ldap_failure_replies_total") - replies, 2u);
}

}  // namespace
}  // namespace saslguard::engine
