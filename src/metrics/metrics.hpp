// metrics.hpp — every counter the daemon keeps, declared once in the lists below. Each thread
// increments its own cache-line-aligned copy (no lock, no shared cache line on the request path);
// readers sum all copies. Every degraded path (malformed input, fail-open, drop) has one.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace saslguard::metrics {

#define SASLGUARD_COUNTERS(X)                                                                     \
  X(requests_total, "policy requests answered")                                                   \
  X(replies_dunno_total, "requests answered DUNNO")                                               \
  X(replies_hold_total, "requests answered HOLD")                                                 \
  X(replies_defer_total, "requests answered DEFER")                                               \
  X(replies_reject_total, "requests answered REJECT")                                             \
  X(unauthenticated_total, "requests skipped because no account was authenticated")               \
  X(allowlisted_total, "requests skipped by an allow list")                                       \
  X(registry_hits_total, "requests refused because the account is marked compromised")            \
  X(marks_total, "new compromise marks")                                                          \
  X(shadow_verdicts_total, "verdicts not enforced because the detector is in shadow mode")        \
  X(malformed_total, "requests that failed to parse (bad line, wrong request type)")              \
  X(oversized_total, "requests over a protocol size limit")                                       \
  X(truncated_total, "connections closed in the middle of a request")                             \
  X(store_errors_total, "state store calls that failed (answered fail-open)")                     \
  X(connections_accepted_total, "connections accepted")                                           \
  X(connections_refused_total, "connections refused at the max_connections limit")                \
  X(connections_idle_closed_total, "connections closed after the idle timeout")                   \
  X(reloads_total, "successful configuration reloads")                                            \
  X(reload_failures_total, "configuration reloads rejected (old configuration kept)")             \
  X(control_requests_total, "control socket commands served")                                     \
  X(eventlog_rows_written_total, "event log rows written to the database")                        \
  X(eventlog_rows_dropped_total, "event log rows dropped (queue full, refused, shutdown)")        \
  X(eventlog_write_errors_total, "event log database errors (connect, write, cleanup)")           \
  X(dns_queries_total, "DNS queries sent")                                                        \
  X(dns_cache_hits_total, "DNS lookups answered from the cache (positive or negative)")           \
  X(dns_merged_total, "DNS lookups that joined a query already in flight")                        \
  X(dns_timeouts_total, "DNS queries that timed out after every try")                             \
  X(dns_failures_total, "DNS queries failed (SERVFAIL, refused, other errors)")                   \
  X(dns_invalid_answers_total, "DNSBL answers outside 127.0.0.0/8 (an error, not a listing)")     \
  X(reputation_lookups_total, "reputation checks that looked a zone up")                          \
  X(reputation_listed_total, "reputation lookups that found the item listed")                     \
  X(reputation_failures_total, "reputation checks answered by dns_failure_action")                \
  X(hooks_started_total, "hook commands started")                                                 \
  X(hooks_failed_total, "hook commands that exited non-zero or could not start")                  \
  X(hooks_killed_total, "hook commands killed at their timeout")                                  \
  X(hooks_dropped_total, "hook runs dropped because the queue was full")                          \
  X(mails_sent_total, "operator e-mails delivered to the SMTP server")                            \
  X(mail_attempts_failed_total, "operator e-mail attempts that failed (retried later)")           \
  X(mails_dropped_total, "operator e-mails given up (retries spent, queue full, shutdown)")       \
  X(geoip_lookups_total, "GeoIP country lookups")                                                 \
  X(geoip_reloads_total, "GeoIP databases reloaded after the file changed")                       \
  X(geoip_reload_failures_total, "GeoIP reloads that failed (the old database is kept)")          \
  X(ldap_lookups_total, "LDAP searches sent")                                                     \
  X(ldap_cache_hits_total, "identity mappings answered from the LDAP cache")                      \
  X(ldap_failures_total, "LDAP searches that failed (server down, timeout, bad answer)")          \
  X(ldap_dropped_total, "LDAP mappings refused because the queue was full")                       \
  X(ldap_failure_replies_total, "requests answered with ldap.failure_action (identity unmapped)") \
  X(geo_fired_total, "requests over a geo limit (IPs or countries)")                              \
  X(store_batches_total, "state store batch calls (one per request that reaches the registry)")   \
  X(registry_cache_answers_total, "store failures answered from the local registry cache")

// Labels of the per-thread labelled counters: fixed enums index fixed arrays, so the request
// path never builds a string or looks a map up. Their text is in the *Names arrays below.
enum class StageLabel : std::uint8_t { Rcpt, EndOfMessage, Other, kCount };
// Same order as protocol::Action (metrics/request_labels.hpp checks it).
enum class ActionLabel : std::uint8_t { Dunno, Hold, Defer, Reject, kCount };
enum class DetectorLabel : std::uint8_t {
  Quota,
  Reputation,
  Geo,
  Denylist,
  Registry,
  Other,
  kCount
};

inline constexpr std::size_t kStageLabels = static_cast<std::size_t>(StageLabel::kCount);
inline constexpr std::size_t kActionLabels = static_cast<std::size_t>(ActionLabel::kCount);
inline constexpr std::size_t kDetectorLabels = static_cast<std::size_t>(DetectorLabel::kCount);

// protocol_state values as Postfix sends them; "other" for every other stage.
inline constexpr std::array<std::string_view, kStageLabels> kStageNames = {"RCPT", "END-OF-MESSAGE",
                                                                           "other"};
inline constexpr std::array<std::string_view, kActionLabels> kActionNames = {"dunno", "hold",
                                                                             "defer", "reject"};
// A verdict with action DUNNO that has an opinion is a log-only listing: it is named "log".
inline constexpr std::array<std::string_view, kActionLabels> kVerdictActionNames = {
    "log", "hold", "defer", "reject"};
inline constexpr std::array<std::string_view, kDetectorLabels> kDetectorNames = {
    "quota", "reputation", "geo", "denylist", "registry", "other"};

// The detector's label from its name (Verdict::detector); unknown names count as "other".
DetectorLabel detectorLabel(std::string_view detector);

// Upper bounds of the request latency histogram, 10 us to 1 s (1-2.5-5 steps); the last bucket,
// past the final bound, is +Inf.
inline constexpr std::array<std::int64_t, 16> kRequestDurationBoundsNs = {
    10'000,      25'000,      50'000,      100'000,      250'000,    500'000,
    1'000'000,   2'500'000,   5'000'000,   10'000'000,   25'000'000, 50'000'000,
    100'000'000, 250'000'000, 500'000'000, 1'000'000'000};
inline constexpr std::size_t kRequestDurationBuckets = kRequestDurationBoundsNs.size() + 1;

template <std::size_t Rows, std::size_t Columns>
using CounterTable = std::array<std::array<std::atomic<std::uint64_t>, Columns>, Rows>;

struct alignas(64) Counters {
#define SASLGUARD_COUNTER_FIELD(name, help) std::atomic<std::uint64_t> name{0};
  SASLGUARD_COUNTERS(SASLGUARD_COUNTER_FIELD)
#undef SASLGUARD_COUNTER_FIELD

  // Replies by protocol_state and action (their sum is requests_total).
  CounterTable<kStageLabels, kActionLabels> replies{};
  // Verdicts with an opinion by detector and action: enforced ones, then shadow-mode ones (those
  // sum to shadow_verdicts_total).
  CounterTable<kDetectorLabels, kActionLabels> verdicts{};
  CounterTable<kDetectorLabels, kActionLabels> shadow_verdicts{};
  // Request latency, request parsed to reply queued: one count per bucket (not cumulative).
  std::array<std::atomic<std::uint64_t>, kRequestDurationBuckets> request_duration_buckets{};
  std::atomic<std::uint64_t> request_duration_sum_ns{0};
};

// This thread's counters. Only this thread writes them, so increments are a relaxed load and
// store, not a locked read-modify-write.
Counters& local();

inline void increment(std::atomic<std::uint64_t>& counter, std::uint64_t by = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}
#define SASLGUARD_COUNT(name) ::saslguard::metrics::increment(::saslguard::metrics::local().name)

// One answered request: its stage and action, and how long it took from parsed to answered.
// Also counts requests_total and replies_<action>_total, as every reply must.
inline void countReply(StageLabel stage, ActionLabel action, std::chrono::nanoseconds duration) {
  auto& counters = local();
  increment(counters.requests_total);
  switch (action) {
    case ActionLabel::Dunno:
      increment(counters.replies_dunno_total);
      break;
    case ActionLabel::Hold:
      increment(counters.replies_hold_total);
      break;
    case ActionLabel::Defer:
      increment(counters.replies_defer_total);
      break;
    case ActionLabel::Reject:
    case ActionLabel::kCount:
      increment(counters.replies_reject_total);
      break;
  }
  increment(counters.replies[static_cast<std::size_t>(stage)][static_cast<std::size_t>(action)]);
  const auto ns = duration.count() > 0 ? duration.count() : 0;
  std::size_t bucket = 0;  // a linear scan: most requests stop within the first few bounds
  while (bucket < kRequestDurationBoundsNs.size() && ns > kRequestDurationBoundsNs[bucket])
    ++bucket;
  increment(counters.request_duration_buckets[bucket]);
  increment(counters.request_duration_sum_ns, static_cast<std::uint64_t>(ns));
}

// One verdict with an opinion, enforced or in shadow mode (then also shadow_verdicts_total).
inline void countVerdict(DetectorLabel detector, ActionLabel action, bool shadow) {
  auto& counters = local();
  auto& table = shadow ? counters.shadow_verdicts : counters.verdicts;
  increment(table[static_cast<std::size_t>(detector)][static_cast<std::size_t>(action)]);
  if (shadow) increment(counters.shadow_verdicts_total);
}

struct Sample {
  std::string_view name;
  std::string_view help;
  std::uint64_t value;
};
// The sum over all threads of every counter, in declaration order.
std::vector<Sample> snapshot();

// The labelled counters summed over all threads, as plain numbers.
struct LabelledSnapshot {
  std::array<std::array<std::uint64_t, kActionLabels>, kStageLabels> replies{};
  std::array<std::array<std::uint64_t, kActionLabels>, kDetectorLabels> verdicts{};
  std::array<std::array<std::uint64_t, kActionLabels>, kDetectorLabels> shadow_verdicts{};
  std::array<std::uint64_t, kRequestDurationBuckets> request_duration_buckets{};
  std::uint64_t request_duration_sum_ns = 0;
};
LabelledSnapshot labelledSnapshot();

// Gauges owned elsewhere (connections open, ...) are plain atomics read directly.
struct Gauges {
  std::atomic<std::int64_t> connections_open{0};
};
Gauges& gauges();

}  // namespace saslguard::metrics
