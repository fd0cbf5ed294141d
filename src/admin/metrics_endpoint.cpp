// metrics_endpoint.cpp — see metrics_endpoint.hpp. The per-thread counters are summed once per
// scrape and turned into prometheus-cpp MetricFamily structs, which its TextSerializer writes;
// the request path never touches a prometheus-cpp object.
#include "admin/metrics_endpoint.hpp"

#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <sstream>

#include "metrics/metrics.hpp"

namespace saslguard::admin {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

constexpr std::string_view kPrefix = "saslguard_";

MetricFamily makeFamily(std::string_view name, std::string_view help, MetricType type) {
  MetricFamily family;
  family.name = std::string(kPrefix) + std::string(name);
  family.help = std::string(help);
  family.type = type;
  return family;
}

void addSample(MetricFamily& family, double value, Labels labels = {}) {
  ClientMetric metric;
  metric.label = std::move(labels);
  if (family.type == MetricType::Gauge) {
    metric.gauge.value = value;
  } else {
    metric.counter.value = value;
  }
  family.metric.push_back(std::move(metric));
}

ClientMetric::Label label(std::string_view name, std::string_view value) {
  return {std::string(name), std::string(value)};
}

// A detector × action table; every cell is written, zeros too, so rate() sees each series from
// the first scrape on rather than from the first verdict. The registry is never in shadow mode:
// its row is left out of the shadow table.
void addDetectorTable(MetricFamily& family,
                      const std::array<std::array<std::uint64_t, metrics::kActionLabels>,
                                       metrics::kDetectorLabels>& table,
                      bool shadow) {
  for (std::size_t detector = 0; detector < metrics::kDetectorLabels; ++detector) {
    if (shadow && detector == static_cast<std::size_t>(metrics::DetectorLabel::Registry)) continue;
    for (std::size_t action = 0; action < metrics::kActionLabels; ++action) {
      addSample(family, static_cast<double>(table[detector][action]),
                {label("detector", metrics::kDetectorNames[detector]),
                 label("action", metrics::kVerdictActionNames[action])});
    }
  }
}

MetricFamily requestDurationHistogram(const metrics::LabelledSnapshot& labelled) {
  auto family =
      makeFamily("request_duration_seconds",
                 "time from a policy request parsed to its reply queued (lookups included)",
                 MetricType::Histogram);
  ClientMetric metric;
  std::uint64_t cumulative = 0;
  for (std::size_t bucket = 0; bucket < metrics::kRequestDurationBuckets; ++bucket) {
    cumulative += labelled.request_duration_buckets[bucket];
    const double upper_bound =
        bucket < metrics::kRequestDurationBoundsNs.size()
            ? static_cast<double>(metrics::kRequestDurationBoundsNs[bucket]) / 1e9
            : std::numeric_limits<double>::infinity();
    metric.histogram.bucket.push_back({cumulative, upper_bound});
  }
  metric.histogram.sample_count = cumulative;
  metric.histogram.sample_sum = static_cast<double>(labelled.request_duration_sum_ns) / 1e9;
  family.metric.push_back(std::move(metric));
  return family;
}

// The existing counters regrouped by backend and by queue, so one query covers them all. Each
// term names a counter of SASLGUARD_COUNTERS; a sum when the backend counts in several.
struct LabelledTerm {
  std::string_view label_value;
  std::vector<std::string_view> counters;
};
struct RegroupedFamily {
  std::string_view name;
  std::string_view help;
  std::string_view label_name;
  std::vector<LabelledTerm> terms;
};

const std::vector<RegroupedFamily>& regroupedFamilies() {
  static const std::vector<RegroupedFamily> families = {
      {"backend_calls_total",
       "calls to each backend (dns: queries, ldap: searches, store: batches, eventlog: rows "
       "written, mail: delivery attempts, hook: commands started)",
       "backend",
       {{"dns", {"dns_queries_total"}},
        {"ldap", {"ldap_lookups_total"}},
        {"store", {"store_batches_total"}},
        {"eventlog", {"eventlog_rows_written_total"}},
        {"mail", {"mails_sent_total", "mail_attempts_failed_total"}},
        {"hook", {"hooks_started_total"}}}},
      {"backend_errors_total",
       "failed backend calls, timeouts included where the backend does not tell them apart",
       "backend",
       {{"dns", {"dns_failures_total", "dns_invalid_answers_total"}},
        {"ldap", {"ldap_failures_total", "ldap_dropped_total"}},
        {"store", {"store_errors_total"}},
        {"eventlog", {"eventlog_write_errors_total"}},
        {"mail", {"mail_attempts_failed_total"}},
        {"hook", {"hooks_failed_total"}}}},
      {"backend_timeouts_total",
       "backend calls that timed out (dns: after every try, hook: killed at its timeout)",
       "backend",
       {{"dns", {"dns_timeouts_total"}}, {"hook", {"hooks_killed_total"}}}},
      {"queue_dropped_total",
       "work dropped by a bounded queue (full, refused, shutdown, retries spent)",
       "queue",
       {{"eventlog", {"eventlog_rows_dropped_total"}},
        {"hook", {"hooks_dropped_total"}},
        {"mail", {"mails_dropped_total"}},
        {"ldap", {"ldap_dropped_total"}}}},
  };
  return families;
}

std::uint64_t counterValue(const std::vector<metrics::Sample>& samples, std::string_view name) {
  const auto found = std::find_if(samples.begin(), samples.end(),
                                  [name](const auto& sample) { return sample.name == name; });
  if (found == samples.end()) {
    // A name in regroupedFamilies() that SASLGUARD_COUNTERS lost: a bug, caught by any test.
    spdlog::critical("metrics: no counter named {}", name);
    std::abort();
  }
  return found->value;
}

void addSourceGauges(const ScrapeSources& sources, std::vector<MetricFamily>& families) {
  auto depth = makeFamily("queue_depth", "work waiting in a bounded queue", MetricType::Gauge);
  if (sources.store) {
    const auto stats = sources.store();
    auto marked =
        makeFamily("registry_marked_accounts", "accounts marked compromised (the registry's size)",
                   MetricType::Gauge);
    addSample(marked, static_cast<double>(stats.marks));
    families.push_back(std::move(marked));
    auto tracked =
        makeFamily("tracked_accounts", "accounts with state kept by the store", MetricType::Gauge);
    addSample(tracked, static_cast<double>(stats.accounts));
    families.push_back(std::move(tracked));
    auto evicted =
        makeFamily("store_evicted_accounts_total",
                   "accounts dropped because of the store's max_accounts cap", MetricType::Counter);
    addSample(evicted, static_cast<double>(stats.evicted));
    families.push_back(std::move(evicted));
    auto flushes =
        makeFamily("store_flushes_total", "state store group commits written", MetricType::Counter);
    addSample(flushes, static_cast<double>(stats.flushes));
    families.push_back(std::move(flushes));
    auto flush_errors = makeFamily("store_flush_errors_total",
                                   "state store group commits that failed", MetricType::Counter);
    addSample(flush_errors, static_cast<double>(stats.flush_errors));
    families.push_back(std::move(flush_errors));
  }
  if (sources.eventlog) {
    const auto stats = sources.eventlog();
    addSample(depth, static_cast<double>(stats.queued), {label("queue", "eventlog")});
    auto connected =
        makeFamily("eventlog_connected", "1 while the event log's database connection is up",
                   MetricType::Gauge);
    addSample(connected, stats.connected ? 1 : 0);
    families.push_back(std::move(connected));
    auto deleted =
        makeFamily("eventlog_rows_deleted_total", "event log rows deleted by the retention cleanup",
                   MetricType::Counter);
    addSample(deleted, static_cast<double>(stats.deleted));
    families.push_back(std::move(deleted));
  }
  if (sources.hook_queue) {
    addSample(depth, static_cast<double>(sources.hook_queue()), {label("queue", "hook")});
  }
  if (sources.mail_queue) {
    addSample(depth, static_cast<double>(sources.mail_queue()), {label("queue", "mail")});
  }
  if (sources.ldap_queue) {
    addSample(depth, static_cast<double>(sources.ldap_queue()), {label("queue", "ldap")});
  }
  if (!depth.metric.empty()) families.push_back(std::move(depth));
}

}  // namespace

std::vector<MetricFamily> collectMetricFamilies(const ScrapeSources& sources) {
  const auto samples = metrics::snapshot();
  const auto labelled = metrics::labelledSnapshot();
  std::vector<MetricFamily> families;

  auto build_info =
      makeFamily("build_info", "the running saslguard's version (always 1)", MetricType::Gauge);
  addSample(build_info, 1, {label("version", SASLGUARD_VERSION)});
  families.push_back(std::move(build_info));

  // Every counter under its own name, with its help text. The two that have a labelled
  // breakdown are that breakdown (the series sum to the counter).
  for (const auto& sample : samples) {
    if (sample.name == "requests_total") {
      auto family = makeFamily(sample.name, std::string(sample.help) + ", by stage and action",
                               MetricType::Counter);
      for (std::size_t stage = 0; stage < metrics::kStageLabels; ++stage) {
        for (std::size_t action = 0; action < metrics::kActionLabels; ++action) {
          addSample(family, static_cast<double>(labelled.replies[stage][action]),
                    {label("protocol_state", metrics::kStageNames[stage]),
                     label("action", metrics::kActionNames[action])});
        }
      }
      families.push_back(std::move(family));
      continue;
    }
    if (sample.name == "shadow_verdicts_total") {
      auto family =
          makeFamily(sample.name, std::string(sample.help) + ", by detector and would-be action",
                     MetricType::Counter);
      addDetectorTable(family, labelled.shadow_verdicts, true);
      families.push_back(std::move(family));
      continue;
    }
    auto family = makeFamily(sample.name, sample.help, MetricType::Counter);
    addSample(family, static_cast<double>(sample.value));
    families.push_back(std::move(family));
  }

  auto verdicts = makeFamily("verdicts_total",
                             "enforced verdicts with an opinion, by detector and action (log: a "
                             "log-only listing); registry: requests from a marked account",
                             MetricType::Counter);
  addDetectorTable(verdicts, labelled.verdicts, false);
  families.push_back(std::move(verdicts));

  families.push_back(requestDurationHistogram(labelled));

  for (const auto& regrouped : regroupedFamilies()) {
    auto family = makeFamily(regrouped.name, regrouped.help, MetricType::Counter);
    for (const auto& term : regrouped.terms) {
      std::uint64_t sum = 0;
      for (const auto counter : term.counters) sum += counterValue(samples, counter);
      addSample(family, static_cast<double>(sum), {label(regrouped.label_name, term.label_value)});
    }
    families.push_back(std::move(family));
  }

  auto connections =
      makeFamily("connections_open", "Postfix policy connections open now", MetricType::Gauge);
  addSample(connections, static_cast<double>(
                             metrics::gauges().connections_open.load(std::memory_order_relaxed)));
  families.push_back(std::move(connections));

  addSourceGauges(sources, families);
  return families;
}

std::string renderPrometheus(const ScrapeSources& sources) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, collectMetricFamilies(sources));
  return std::move(out).str();
}

Handler metricsHandler(ScrapeSources sources) {
  return [sources = std::move(sources)](const Request&) {
    Response response;
    response.content_type = std::string(kPrometheusContentType);
    response.body = renderPrometheus(sources);
    return response;
  };
}

}  // namespace saslguard::admin
