// metrics_endpoint.hpp — the body of GET /metrics: every counter of metrics.hpp (summed over the
// threads at scrape time) and the gauges read from their owners, in the Prometheus text format.
// Nothing here runs on the request path; each scrape builds its metric families afresh.
#pragma once

#include <prometheus/metric_family.h>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "admin/router.hpp"
#include "eventlog/sql_event_log.hpp"
#include "store/store.hpp"

namespace saslguard::admin {

// The Content-Type of renderPrometheus()'s text (exposition format 0.0.4).
inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// Where the gauges come from. Each function is called once per scrape, on the scraping thread,
// so it must be safe to call from there; an empty one leaves its metrics out of the output.
struct ScrapeSources {
  // Registry size (marks), tracked accounts, evictions, flushes: Store::stats().
  std::function<store::StoreStats()> store;
  // Event log queue depth, database connection, retention deletes: SqlEventLog::stats().
  std::function<eventlog::SqlEventLog::Stats()> eventlog;
  // Work waiting in the other bounded queues (hook runs, operator mails, LDAP searches).
  std::function<std::size_t()> hook_queue;
  std::function<std::size_t()> mail_queue;
  std::function<std::size_t()> ldap_queue;
};

// The metric families of one scrape, in output order (for renderPrometheus and tests).
std::vector<prometheus::MetricFamily> collectMetricFamilies(const ScrapeSources& sources);

// The text GET /metrics answers with (Content-Type kPrometheusContentType).
std::string renderPrometheus(const ScrapeSources& sources);

// The GET /metrics route: router.add("GET", "/metrics", metricsHandler(std::move(sources))).
Handler metricsHandler(ScrapeSources sources);

}  // namespace saslguard::admin
