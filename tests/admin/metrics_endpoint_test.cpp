// metrics_endpoint_test.cpp — GET /metrics' text: it parses as the Prometheus text format, holds
// every counter of SASLGUARD_COUNTERS with its help, sums per-thread counters exactly, and the
// Grafana dashboard and docs/metrics.md only name metrics it emits (and name all of them).
#include "admin/metrics_endpoint.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "metrics/metrics.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::admin {
namespace {

using namespace std::chrono_literals;

// One parsed exposition: families by name, each with its samples.
struct ParsedSample {
  std::string name;  // the family's, or with _bucket / _sum / _count for a histogram
  std::map<std::string, std::string> labels;
  double value = 0;
};
struct ParsedFamily {
  std::string help;
  std::string type;
  std::vector<ParsedSample> samples;
};
using Exposition = std::map<std::string, ParsedFamily>;

const std::regex kMetricName("[a-zA-Z_:][a-zA-Z0-9_:]*");
const std::regex kHelpLine(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*))");
const std::regex kTypeLine(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))");
const std::regex kSampleLine(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+))");
const std::regex kLabelPair(R"(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)\",?)");

double parseValue(const std::string& text) {
  if (text == "+Inf") return std::numeric_limits<double>::infinity();
  std::size_t used = 0;
  const double value = std::stod(text, &used);
  if (used != text.size()) throw std::runtime_error("bad value " + text);
  return value;
}

// A small parser of the text format (0.0.4) that fails the test on anything it does not know:
// every family has HELP then TYPE, and every sample follows its family's TYPE line.
Exposition parseExposition(const std::string& text) {
  Exposition families;
  std::istringstream lines(text);
  std::string line, current, pending_help;
  std::smatch match;
  while (std::getline(lines, line)) {
    SCOPED_TRACE(line);
    if (std::regex_match(line, match, kHelpLine)) {
      pending_help = match[1];
      EXPECT_EQ(families.count(match[1]), 0u) << "family declared twice";
      families[match[1]].help = match[2];
    } else if (std::regex_match(line, match, kTypeLine)) {
      EXPECT_EQ(pending_help, match[1]) << "TYPE without HELP just before";
      current = match[1];
      families[current].type = match[2];
    } else if (std::regex_match(line, match, kSampleLine)) {
      ParsedSample sample;
      sample.name = match[1];
      const auto& family = families[current];
      const bool ownName = sample.name == current;
      const bool histogramPart =
          family.type == "histogram" &&
          (sample.name == current + "_bucket" || sample.name == current + "_sum" ||
           sample.name == current + "_count");
      EXPECT_TRUE(ownName || histogramPart) << "sample outside its family " << current;
      std::string labels = match[3];
      std::smatch pair;
      while (std::regex_search(labels, pair, kLabelPair) && pair.position() == 0) {
        sample.labels[pair[1]] = pair[2];
        labels = pair.suffix();
      }
      EXPECT_TRUE(labels.empty()) << "unparsed labels: " << labels;
      sample.value = parseValue(match[4]);
      families[current].samples.push_back(std::move(sample));
    } else {
      ADD_FAILURE() << "not a HELP, TYPE or sample line";
    }
  }
  for (const auto& [name, family] : families) {
    EXPECT_TRUE(std::regex_match(name, kMetricName)) << name;
    EXPECT_FALSE(family.type.empty()) << name << " has no TYPE";
    EXPECT_FALSE(family.help.empty()) << name << " has no HELP";
    if (family.type == "counter") {
      EXPECT_TRUE(name.ends_with("_total")) << name;
    } else {
      EXPECT_FALSE(name.ends_with("_total")) << name;
    }
  }
  return families;
}

// The value of the sample of `family` (named `sample_name`, default the family's) whose labels
// include `labels`; NaN when there is none.
double valueOf(const Exposition& exposition, const std::string& family,
               const std::map<std::string, std::string>& labels = {},
               const std::string& sample_name = {}) {
  const auto found = exposition.find(family);
  if (found == exposition.end()) return std::nan("");
  for (const auto& sample : found->second.samples) {
    if (sample.name != (sample_name.empty() ? family : sample_name)) continue;
    bool matches = true;
    for (const auto& [name, value] : labels) {
      const auto label = sample.labels.find(name);
      matches = matches && label != sample.labels.end() && label->second == value;
    }
    if (matches) return sample.value;
  }
  return std::nan("");
}

double sumOf(const Exposition& exposition, const std::string& family) {
  double sum = 0;
  for (const auto& sample : exposition.at(family).samples) sum += sample.value;
  return sum;
}

std::uint64_t counterValue(std::string_view name) {
  for (const auto& sample : metrics::snapshot()) {
    if (sample.name == name) return sample.value;
  }
  ADD_FAILURE() << "no counter " << name;
  return 0;
}

// Sources with every callback set, so every metric is emitted.
ScrapeSources allSources() {
  ScrapeSources sources;
  sources.store = [] {
    store::StoreStats stats;
    stats.accounts = 1200;
    stats.marks = 3;
    stats.evicted = 7;
    stats.flushes = 40;
    stats.flush_errors = 1;
    return stats;
  };
  sources.eventlog = [] {
    eventlog::SqlEventLog::Stats stats;
    stats.queued = 5;
    stats.connected = true;
    stats.deleted = 11;
    return stats;
  };
  sources.hook_queue = [] { return std::size_t{2}; };
  sources.mail_queue = [] { return std::size_t{4}; };
  sources.ldap_queue = [] { return std::size_t{6}; };
  return sources;
}

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(MetricsEndpoint, RendersTheTextFormat) {
  const auto text = renderPrometheus(allSources());
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  const auto exposition = parseExposition(text);
  EXPECT_EQ(exposition.at("saslguard_build_info").type, "gauge");
  EXPECT_EQ(valueOf(exposition, "saslguard_build_info", {{"version", SASLGUARD_VERSION}}), 1);
  EXPECT_EQ(exposition.at("saslguard_verdicts_total").type, "counter");
  EXPECT_EQ(exposition.at("saslguard_request_duration_seconds").type, "histogram");
}

TEST(MetricsEndpoint, EveryCounterIsThereWithItsHelp) {
  const auto exposition = parseExposition(renderPrometheus({}));
  for (const auto& sample : metrics::snapshot()) {
    const auto name = "saslguard_" + std::string(sample.name);
    SCOPED_TRACE(name);
    ASSERT_EQ(exposition.count(name), 1u);
    EXPECT_EQ(exposition.at(name).type, "counter");
    EXPECT_TRUE(exposition.at(name).help.starts_with(sample.help)) << exposition.at(name).help;
  }
}

TEST(MetricsEndpoint, CountersFromSeveralThreadsAreSummedExactly) {
  const auto before = parseExposition(renderPrometheus({}));
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < kPerThread; ++i) {
        metrics::countReply(metrics::StageLabel::Rcpt, metrics::ActionLabel::Hold, 30us);
        metrics::countVerdict(metrics::DetectorLabel::Geo, metrics::ActionLabel::Reject, false);
        metrics::countVerdict(metrics::DetectorLabel::Quota, metrics::ActionLabel::Hold, true);
        SASLGUARD_COUNT(dns_queries_total);
        SASLGUARD_COUNT(hooks_dropped_total);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const auto after = parseExposition(renderPrometheus({}));
  constexpr double kAll = kThreads * kPerThread;
  const auto delta = [&](const std::string& family,
                         const std::map<std::string, std::string>& labels = {},
                         const std::string& sample = {}) {
    return valueOf(after, family, labels, sample) - valueOf(before, family, labels, sample);
  };
  EXPECT_EQ(delta("saslguard_requests_total", {{"protocol_state", "RCPT"}, {"action", "hold"}}),
            kAll);
  EXPECT_EQ(delta("saslguard_replies_hold_total"), kAll);
  EXPECT_EQ(delta("saslguard_verdicts_total", {{"detector", "geo"}, {"action", "reject"}}), kAll);
  EXPECT_EQ(delta("saslguard_shadow_verdicts_total", {{"detector", "quota"}, {"action", "hold"}}),
            kAll);
  EXPECT_EQ(delta("saslguard_dns_queries_total"), kAll);
  EXPECT_EQ(delta("saslguard_backend_calls_total", {{"backend", "dns"}}), kAll);
  EXPECT_EQ(delta("saslguard_queue_dropped_total", {{"queue", "hook"}}), kAll);
  // 30 us lands in the 50 us bucket and every one above it, not in the 25 us one.
  const std::string histogram = "saslguard_request_duration_seconds";
  EXPECT_EQ(delta(histogram, {{"le", "2.5e-05"}}, histogram + "_bucket"), 0);
  EXPECT_EQ(delta(histogram, {{"le", "5e-05"}}, histogram + "_bucket"), kAll);
  EXPECT_EQ(delta(histogram, {{"le", "+Inf"}}, histogram + "_bucket"), kAll);
  EXPECT_EQ(delta(histogram, {}, histogram + "_count"), kAll);
  EXPECT_NEAR(delta(histogram, {}, histogram + "_sum"), kAll * 30e-6, 1e-6);
}

TEST(MetricsEndpoint, LabelledCountersSumToTheirTotals) {
  metrics::countReply(metrics::StageLabel::EndOfMessage, metrics::ActionLabel::Reject, 2ms);
  metrics::countVerdict(metrics::DetectorLabel::Reputation, metrics::ActionLabel::Dunno, true);
  const auto exposition = parseExposition(renderPrometheus({}));
  EXPECT_EQ(sumOf(exposition, "saslguard_requests_total"),
            static_cast<double>(counterValue("requests_total")));
  EXPECT_EQ(sumOf(exposition, "saslguard_shadow_verdicts_total"),
            static_cast<double>(counterValue("shadow_verdicts_total")));
  EXPECT_GE(valueOf(exposition, "saslguard_shadow_verdicts_total",
                    {{"detector", "reputation"}, {"action", "log"}}),
            1);
}

TEST(MetricsEndpoint, HistogramBucketsAreCumulativeUpToInfEqualToCount) {
  metrics::countReply(metrics::StageLabel::Other, metrics::ActionLabel::Dunno, 5s);  // past 1 s
  metrics::countReply(metrics::StageLabel::Other, metrics::ActionLabel::Dunno, 0ns);
  const auto exposition = parseExposition(renderPrometheus({}));
  const std::string name = "saslguard_request_duration_seconds";
  const auto& samples = exposition.at(name).samples;
  std::vector<std::pair<double, double>> buckets;  // (le, count)
  for (const auto& sample : samples) {
    if (sample.name == name + "_bucket") {
      buckets.emplace_back(parseValue(sample.labels.at("le")), sample.value);
    }
  }
  ASSERT_EQ(buckets.size(), metrics::kRequestDurationBuckets);
  EXPECT_DOUBLE_EQ(buckets.front().first, 10e-6);
  EXPECT_DOUBLE_EQ(buckets[buckets.size() - 2].first, 1.0);
  EXPECT_TRUE(std::isinf(buckets.back().first));
  for (std::size_t i = 1; i < buckets.size(); ++i) {
    EXPECT_LT(buckets[i - 1].first, buckets[i].first);
    EXPECT_LE(buckets[i - 1].second, buckets[i].second);
  }
  EXPECT_GE(buckets.front().second, 1);                                      // the 0 ns one
  EXPECT_GE(buckets.back().second - buckets[buckets.size() - 2].second, 1);  // the 5 s one
  EXPECT_EQ(buckets.back().second, valueOf(exposition, name, {}, name + "_count"));
}

TEST(MetricsEndpoint, GaugesComeFromTheSources) {
  const auto exposition = parseExposition(renderPrometheus(allSources()));
  EXPECT_EQ(valueOf(exposition, "saslguard_registry_marked_accounts"), 3);
  EXPECT_EQ(valueOf(exposition, "saslguard_tracked_accounts"), 1200);
  EXPECT_EQ(valueOf(exposition, "saslguard_store_evicted_accounts_total"), 7);
  EXPECT_EQ(valueOf(exposition, "saslguard_store_flush_errors_total"), 1);
  EXPECT_EQ(valueOf(exposition, "saslguard_queue_depth", {{"queue", "eventlog"}}), 5);
  EXPECT_EQ(valueOf(exposition, "saslguard_queue_depth", {{"queue", "hook"}}), 2);
  EXPECT_EQ(valueOf(exposition, "saslguard_queue_depth", {{"queue", "mail"}}), 4);
  EXPECT_EQ(valueOf(exposition, "saslguard_queue_depth", {{"queue", "ldap"}}), 6);
  EXPECT_EQ(valueOf(exposition, "saslguard_eventlog_connected"), 1);
  EXPECT_EQ(valueOf(exposition, "saslguard_eventlog_rows_deleted_total"), 11);
  metrics::gauges().connections_open.fetch_add(2);
  EXPECT_EQ(valueOf(parseExposition(renderPrometheus({})), "saslguard_connections_open"),
            static_cast<double>(metrics::gauges().connections_open.load()));
  metrics::gauges().connections_open.fetch_sub(2);
}

TEST(MetricsEndpoint, TheRouteAnswersTheTextWithItsContentType) {
  Router router;
  router.add("GET", "/metrics", metricsHandler(allSources()));
  Request request;
  request.method = "GET";
  request.path = "/metrics";
  const auto response = router.dispatch(request);
  EXPECT_EQ(response.status, 200u);
  EXPECT_EQ(response.content_type, kPrometheusContentType);
  EXPECT_EQ(parseExposition(response.body).count("saslguard_queue_depth"), 1u);
}

TEST(MetricsEndpoint, AbsentSourcesLeaveTheirMetricsOut) {
  const auto exposition = parseExposition(renderPrometheus({}));
  EXPECT_EQ(exposition.count("saslguard_registry_marked_accounts"), 0u);
  EXPECT_EQ(exposition.count("saslguard_queue_depth"), 0u);
  EXPECT_EQ(exposition.count("saslguard_eventlog_connected"), 0u);
  EXPECT_EQ(exposition.count("saslguard_connections_open"), 1u);
}

// Names a PromQL expression uses that look like ours (saslguard_...).
std::set<std::string> metricNamesIn(const std::string& expression) {
  static const std::regex kOurName("saslguard_[a-zA-Z0-9_:]*");
  std::set<std::string> names;
  for (std::sregex_iterator it(expression.begin(), expression.end(), kOurName), end; it != end;
       ++it) {
    names.insert(it->str());
  }
  return names;
}

void collectExpressions(const boost::json::value& value, std::vector<std::string>& out) {
  if (value.is_object()) {
    for (const auto& [key, member] : value.as_object()) {
      if ((key == "expr" || key == "query") && member.is_string()) {
        out.emplace_back(member.as_string());
      } else {
        collectExpressions(member, out);
      }
    }
  } else if (value.is_array()) {
    for (const auto& element : value.as_array()) collectExpressions(element, out);
  }
}

// Every series name the renderer emits: families, plus _bucket/_sum/_count of histograms.
std::set<std::string> emittedSeriesNames() {
  std::set<std::string> names;
  for (const auto& [name, family] : parseExposition(renderPrometheus(allSources()))) {
    names.insert(name);
    if (family.type == "histogram") {
      for (const auto* suffix : {"_bucket", "_sum", "_count"}) names.insert(name + suffix);
    }
  }
  return names;
}

TEST(GrafanaDashboard, UsesOnlyMetricsTheEndpointEmits) {
  const auto dashboard = boost::json::parse(
      readFile(std::filesystem::path(SASLGUARD_SOURCE_DIR) / "contrib/grafana-dashboard.json"));
  std::vector<std::string> expressions;
  collectExpressions(dashboard, expressions);
  ASSERT_GE(expressions.size(), 8u);
  const auto emitted = emittedSeriesNames();
  std::set<std::string> used;
  for (const auto& expression : expressions) {
    const auto names = metricNamesIn(expression);
    EXPECT_FALSE(names.empty()) << "no saslguard metric in: " << expression;
    for (const auto& name : names) {
      EXPECT_EQ(emitted.count(name), 1u) << name << " in: " << expression;
      used.insert(name);
    }
  }
  for (const auto* required :
       {"saslguard_requests_total", "saslguard_verdicts_total", "saslguard_shadow_verdicts_total",
        "saslguard_request_duration_seconds_bucket", "saslguard_backend_errors_total",
        "saslguard_backend_timeouts_total", "saslguard_queue_depth",
        "saslguard_queue_dropped_total", "saslguard_registry_marked_accounts",
        "saslguard_connections_open"}) {
    EXPECT_EQ(used.count(required), 1u) << required << " has no panel";
  }
  EXPECT_EQ(dashboard.at("__inputs").at(0).at("name").as_string(), "DS_PROMETHEUS");
  EXPECT_GE(dashboard.at("schemaVersion").to_number<int>(), 36);
}

TEST(MetricsDocumentation, NamesEveryMetric) {
  const auto docs = readFile(std::filesystem::path(SASLGUARD_SOURCE_DIR) / "docs/metrics.md");
  for (const auto& [name, family] : parseExposition(renderPrometheus(allSources()))) {
    EXPECT_NE(docs.find("`" + name + "`"), std::string::npos) << name << " is not documented";
  }
}

// promtool (Debian package prometheus, not a build dependency) checks the output and the
// dashboard's PromQL when it is installed, or named by SASLGUARD_PROMTOOL; else those tests skip.
std::string findPromtool() {
  if (const char* named = std::getenv("SASLGUARD_PROMTOOL"); named != nullptr && *named) {
    return named;
  }
  for (const auto* candidate : {"/usr/bin/promtool", "/usr/local/bin/promtool"}) {
    if (std::filesystem::exists(candidate)) return candidate;
  }
  return {};
}

TEST(MetricsEndpoint, PromtoolAcceptsTheOutput) {
  const auto promtool = findPromtool();
  if (promtool.empty()) GTEST_SKIP() << "promtool not installed";
  saslguard::testing::TempDir dir;
  const auto input = dir / "metrics.txt";
  const auto output = dir / "promtool.log";
  std::ofstream(input) << renderPrometheus(allSources());
  const auto command =
      promtool + " check metrics < " + input.string() + " > " + output.string() + " 2>&1";
  EXPECT_EQ(std::system(command.c_str()), 0) << readFile(output);
}

// Each panel query as a recording rule, Grafana's variables replaced by plain values, so that
// promtool parses it as PromQL.
TEST(GrafanaDashboard, ExpressionsParseAsPromQL) {
  const auto promtool = findPromtool();
  if (promtool.empty()) GTEST_SKIP() << "promtool not installed";
  const auto dashboard = boost::json::parse(
      readFile(std::filesystem::path(SASLGUARD_SOURCE_DIR) / "contrib/grafana-dashboard.json"));
  std::vector<std::string> expressions;
  collectExpressions(dashboard, expressions);
  std::string rules = "groups:\n  - name: dashboard\n    rules:\n";
  int number = 0;
  for (auto expression : expressions) {
    if (expression.starts_with("label_values(")) continue;  // a Grafana function, not PromQL
    for (const auto& [variable, value] :
         {std::pair{"$__rate_interval", "5m"}, std::pair{"$__range", "1h"},
          std::pair{"$instance", ".*"}}) {
      for (auto at = expression.find(variable); at != std::string::npos;
           at = expression.find(variable)) {
        expression.replace(at, std::string_view(variable).size(), value);
      }
    }
    ASSERT_EQ(expression.find('\''), std::string::npos) << expression;
    rules += "      - record: dashboard:expression_" + std::to_string(++number) + "\n";
    rules += "        expr: '" + expression + "'\n";
  }
  saslguard::testing::TempDir dir;
  const auto input = dir / "rules.yml";
  const auto output = dir / "promtool.log";
  std::ofstream(input) << rules;
  const auto command =
      promtool + " check rules " + input.string() + " > " + output.string() + " 2>&1";
  EXPECT_EQ(std::system(command.c_str()), 0) << readFile(output) << rules;
}

}  // namespace
}  // namespace saslguard::admin
