// pipeline.cpp — see pipeline.hpp. Everything the request path does is in decide(); the helpers
// below only format and record.
#include "engine/pipeline.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/container/small_vector.hpp>
#include <exception>

#include "common/log.hpp"
#include "common/strings.hpp"
#include "config/options.hpp"
#include "engine/detectors/detectors.hpp"
#include "engine/enrichers.hpp"
#include "enrich/dns.hpp"
#include "metrics/metrics.hpp"
#include "metrics/request_labels.hpp"
#include "notify/notifier.hpp"
#include "store/redis_store.hpp"

namespace saslguard::engine {

using protocol::Attr;

Result<PipelinePtr> Pipeline::build(config::SettingsPtr settings, store::Store& store,
                                    RecentDecisions& recent, eventlog::EventSink* events,
                                    notify::Notifier* notifier, const Pipeline* previous) {
  auto detectors = buildDetectors(*settings);
  if (!detectors) return tl::unexpected(detectors.error());
  return buildWith(std::move(settings), store, recent, std::move(*detectors), events, notifier,
                   previous);
}

namespace {

// Whether any option of `section` differs between the two settings.
bool sectionChanged(const config::Settings& before, const config::Settings& after,
                    std::string_view section) {
  for (const auto* option : config::changedOptions(before, after)) {
    if (option->section == section) return true;
  }
  return false;
}

}  // namespace

Result<PipelinePtr> Pipeline::buildWith(config::SettingsPtr settings, store::Store& store,
                                        RecentDecisions& recent,
                                        std::vector<ConfiguredDetector> detectors,
                                        eventlog::EventSink* events, notify::Notifier* notifier,
                                        const Pipeline* previous) {
  std::shared_ptr<enrich::LdapMapper> ldap;
  if (settings->ldap.enabled && previous != nullptr && previous->ldap_ != nullptr &&
      !sectionChanged(previous->settings(), *settings, "ldap")) {
    ldap = previous->ldap_;
  } else if (settings->ldap.enabled) {
    auto mapper = makeLdapMapper(settings->ldap);
    if (!mapper) return tl::unexpected(mapper.error());
    ldap = std::move(*mapper);
  }
  IdentityResolver identity(settings->identity);
  auto allow = AllowLists::build(settings->lists, identity);
  if (!allow) return tl::unexpected(allow.error());
  if (!protocol::parseAction(settings->registry.action)) {
    return fail("registry.action: unknown action '" + settings->registry.action + "'");
  }
  auto pipeline = new Pipeline(std::move(settings), store, recent, std::move(*allow),
                               std::move(detectors), events, notifier);
  pipeline->ldap_ = std::move(ldap);
  pipeline->ldap_skip_unknown_ = pipeline->settings_->ldap.not_found == "skip";
  pipeline->ldap_failure_action_ =
      pipeline->settings_->ldap.failure_action == "DEFER" ? Action::Defer : Action::Dunno;
  pipeline->has_lookups_ = pipeline->has_lookups_ || pipeline->ldap_ != nullptr;
  if (pipeline->dns_cache_ != nullptr && previous != nullptr && previous->dns_cache_ != nullptr &&
      !sectionChanged(previous->settings(), pipeline->settings(), "dns")) {
    pipeline->dns_cache_ = previous->dns_cache_;
  }
  return PipelinePtr(pipeline);
}

Pipeline::Pipeline(config::SettingsPtr settings, store::Store& store, RecentDecisions& recent,
                   AllowLists allow, std::vector<ConfiguredDetector> detectors,
                   eventlog::EventSink* events, notify::Notifier* notifier)
    : settings_(std::move(settings)),
      store_(store),
      recent_(recent),
      events_(events),
      notifier_(notifier),
      dns_options_(std::make_unique<enrich::DnsOptions>(dnsOptionsFrom(settings_->dns))),
      identity_(settings_->identity),
      allow_(std::move(allow)),
      detectors_(std::move(detectors)),
      registry_action_(*protocol::parseAction(settings_->registry.action)),
      store_failure_action_(settings_->state.failure_action == "DEFER" ? Action::Defer
                                                                       : Action::Dunno) {
  redis_ = dynamic_cast<store::RedisStore*>(&store);
  for (const auto& configured : detectors_)
    has_lookups_ = has_lookups_ || configured.detector->looksUp();
  if (has_lookups_) dns_cache_ = enrich::makeDnsCache(*dns_options_);
}

Pipeline::~Pipeline() = default;

Pipeline::Mapping Pipeline::applyMapping(Identity& identity, const Lookups* lookups) const {
  if (ldap_ == nullptr) return Mapping::kOk;
  std::optional<enrich::LdapAnswer> answer;
  if (lookups != nullptr && lookups->mapping) answer = lookups->mapping;
  if (!answer) answer = ldap_->cached(identity.account);
  if (!answer) return Mapping::kFailed;  // not looked up (or evicted since): as a failure
  switch (answer->status) {
    case enrich::LdapStatus::kMapped:
      identity.account = answer->account;
      return Mapping::kOk;
    case enrich::LdapStatus::kNotFound:
      return ldap_skip_unknown_ ? Mapping::kSkip : Mapping::kOk;
    case enrich::LdapStatus::kFailed:
      break;
  }
  return Mapping::kFailed;
}

bool Pipeline::needsLookups(const protocol::Request& request, TimePoint now,
                            bool detector_lookups) const {
  if (!has_lookups_) return false;
  auto identity = identity_.resolve(request);
  if (!identity) return false;
  if (ldap_ != nullptr) {
    if (!ldap_->cached(identity->account)) return true;
    if (applyMapping(*identity, nullptr) != Mapping::kOk) return false;
  }
  if (!detector_lookups || !allow_.match(request, *identity).empty()) return false;
  const DetectorContext context{request, *identity, now};
  bool wanted = false;
  for (const auto& configured : detectors_)
    wanted = wanted || configured.detector->wantsLookup(context);
  if (!wanted) return false;
  // A marked account is answered by the registry: no lookup (as Abusix). A store error here
  // only costs a lookup; decide() reports it. Redis is not asked on the worker thread: the
  // registry cache knows the marks this instance has seen.
  if (redis_ != nullptr) return !redis_->registryCache().action(identity->account);
  auto mark = store_.getMark(identity->account, now);
  return !(mark && *mark);
}

boost::asio::awaitable<Lookups> Pipeline::lookups(const protocol::Request& request, TimePoint now,
                                                  const Enrichers& enrichers,
                                                  bool detector_lookups) const {
  Lookups lookups;
  auto identity = co_await mapIdentity(request, lookups);
  if (!identity || !detector_lookups || !allow_.match(request, *identity).empty()) {
    co_return lookups;
  }
  const DetectorContext context{request, *identity, now};
  co_await detectorLookups(context, enrichers, lookups);
  co_return lookups;
}

boost::asio::awaitable<std::optional<Identity>> Pipeline::mapIdentity(
    const protocol::Request& request, Lookups& lookups) const {
  auto identity = identity_.resolve(request);
  if (!identity) co_return std::nullopt;
  if (ldap_ != nullptr) {
    auto answer = ldap_->cached(identity->account);
    if (!answer) answer = co_await ldap_->map(identity->account);
    lookups.mapping = std::move(answer);
    lookups.failed = lookups.mapping->status == enrich::LdapStatus::kFailed;
    if (applyMapping(*identity, &lookups) != Mapping::kOk) co_return std::nullopt;
  }
  co_return identity;
}

boost::asio::awaitable<void> Pipeline::detectorLookups(const DetectorContext& context,
                                                       const Enrichers& enrichers,
                                                       Lookups& lookups) const {
  for (std::size_t i = 0; i < detectors_.size(); ++i) {
    const auto& detector = *detectors_[i].detector;
    if (!detector.wantsLookup(context)) continue;
    auto verdict = co_await detector.lookup(context, enrichers);
    lookups.failed = lookups.failed || verdict.lookup_failed;
    lookups.verdicts.emplace_back(i, std::move(verdict));
  }
}

struct Pipeline::InProgress {
  std::chrono::steady_clock::time_point started;
  std::optional<Identity> identity;
  DecisionRecord record;
  store::Batch batch;
  struct Planned {
    std::size_t counters_begin, counters_end, sets_begin, sets_end;
  };
  // Inline for the usual handful of detectors: a heap vector here was one allocation per request.
  boost::container::small_vector<Planned, 8> planned;
  std::optional<Verdict> winner;
  std::optional<Verdict> marking;
  struct Counted {
    std::string_view detector;
    CountedMessage message;
    bool shadow;
  };
  std::vector<Counted> counted;
};

Action Pipeline::decide(const protocol::Request& request, TimePoint now, std::string& reply,
                        const Lookups* lookups) const {
  InProgress work;
  if (auto answered = plan(request, now, reply, lookups, work)) return *answered;
  auto state = store_.execute(work.batch, now);
  if (auto answered = evaluate(request, reply, lookups, work, state)) return *answered;
  const auto outcome = store_.mark(work.identity->account, markFor(*work.marking, now), now);
  recordMark(*work.identity, *work.marking, request, now, work.record, outcome);
  return conclude(request, reply, work);
}

boost::asio::awaitable<Action> Pipeline::decideAsync(const protocol::Request& request,
                                                     TimePoint now, std::string& reply,
                                                     const Lookups* lookups) const {
  InProgress work;
  if (auto answered = plan(request, now, reply, lookups, work)) co_return *answered;
  // The batch is not needed after the call: the detectors' results are found by position.
  auto state = co_await redis_->executeAsync(std::move(work.batch), now);
  co_return co_await finishAsync(request, now, reply, lookups, work, state);
}

boost::asio::awaitable<Action> Pipeline::lookUpAndDecideAsync(const protocol::Request& request,
                                                              TimePoint now, std::string& reply,
                                                              const Enrichers& enrichers,
                                                              bool detector_lookups,
                                                              Lookups& lookups) const {
  namespace asio = boost::asio;
  // The mapping first: it names the account the store call is about.
  co_await mapIdentity(request, lookups);
  InProgress work;
  if (auto answered = plan(request, now, reply, &lookups, work)) co_return *answered;
  if (!detector_lookups) {
    auto state = co_await redis_->executeAsync(std::move(work.batch), now);
    co_return co_await finishAsync(request, now, reply, &lookups, work, state);
  }
  // Both on this connection's executor (one thread): they interleave, never run in parallel,
  // so writing `lookups` and the store's state needs no lock. Both always complete: DNS and
  // the store each have their own timeout.
  const DetectorContext context{request, *work.identity, now};
  const auto executor = co_await asio::this_coro::executor;
  auto both =
      co_await asio::experimental::make_parallel_group(
          asio::co_spawn(executor, redis_->executeAsync(std::move(work.batch), now),
                         asio::deferred),
          asio::co_spawn(executor, detectorLookups(context, enrichers, lookups), asio::deferred))
          .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
  // Neither throws short of a bug or exhausted memory; then the connection ends (the store's
  // change, already made, stays, as when a reply cannot be written).
  if (auto failure = std::get<1>(both)) std::rethrow_exception(failure);
  if (auto failure = std::get<3>(both)) std::rethrow_exception(failure);
  co_return co_await finishAsync(request, now, reply, &lookups, work, std::get<2>(both));
}

boost::asio::awaitable<Action> Pipeline::finishAsync(const protocol::Request& request,
                                                     TimePoint now, std::string& reply,
                                                     const Lookups* lookups, InProgress& work,
                                                     Result<store::BatchResult>& state) const {
  if (auto answered = evaluate(request, reply, lookups, work, state)) co_return *answered;
  const auto outcome =
      co_await redis_->markAsync(work.identity->account, markFor(*work.marking, now), now);
  recordMark(*work.identity, *work.marking, request, now, work.record, outcome);
  co_return conclude(request, reply, work);
}

std::optional<Action> Pipeline::plan(const protocol::Request& request, TimePoint now,
                                     std::string& reply, const Lookups* lookups,
                                     InProgress& work) const {
  work.started = std::chrono::steady_clock::now();

  // 1. identity, mapped through LDAP when configured
  work.identity = identity_.resolve(request);
  if (!work.identity) {
    SASLGUARD_COUNT(unauthenticated_total);
    protocol::appendReply(reply, Action::Dunno, {});
    return Action::Dunno;
  }
  auto& identity = *work.identity;
  auto& record = work.record;
  const auto mapping = applyMapping(identity, lookups);
  record.at = now;
  record.account = identity.account;
  record.stage = request.stage();
  record.instance = request.get(Attr::instance);
  record.client_address = request.get(Attr::client_address);
  if (mapping == Mapping::kSkip) {
    record.outcome = "ldap-unknown";
    return finish(record, Action::Dunno, {}, work.started, reply);
  }
  if (mapping == Mapping::kFailed) {
    // The failed search itself was counted by the mapper (ldap_failures_total); this counts
    // the answer, which also covers an identity that was never looked up.
    SASLGUARD_COUNT(ldap_failure_replies_total);
    const auto* answer = lookups != nullptr && lookups->mapping ? &*lookups->mapping : nullptr;
    if (log::peerWarningAllowed()) {
      spdlog::warn("LDAP mapping of {} failed: {} (answering {})", quoteForLog(identity.account),
                   answer != nullptr ? answer->error : std::string("no answer"),
                   protocol::actionName(ldap_failure_action_));
    }
    record.outcome = "ldap-error";
    return finish(record, ldap_failure_action_, defaultText(ldap_failure_action_), work.started,
                  reply);
  }

  // 2. allow lists
  if (!allow_.match(request, identity).empty()) {
    SASLGUARD_COUNT(allowlisted_total);
    record.outcome = "allowlisted";
    return finish(record, Action::Dunno, {}, work.started, reply);
  }

  // 3. registry and detector state, in one store call
  const DetectorContext context{request, identity, now};
  work.batch.account = identity.account;
  work.planned.resize(detectors_.size());
  for (std::size_t i = 0; i < detectors_.size(); ++i) {
    auto& planned = work.planned[i];
    planned.counters_begin = work.batch.counters.size();
    planned.sets_begin = work.batch.sets.size();
    detectors_[i].detector->plan(context, work.batch);
    planned.counters_end = work.batch.counters.size();
    planned.sets_end = work.batch.sets.size();
  }
  SASLGUARD_COUNT(store_batches_total);
  return std::nullopt;
}

std::optional<Action> Pipeline::evaluate(const protocol::Request& request, std::string& reply,
                                         const Lookups* lookups, InProgress& work,
                                         Result<store::BatchResult>& state) const {
  const auto& identity = *work.identity;
  auto& record = work.record;
  if (!state) {
    SASLGUARD_COUNT(store_errors_total);
    // A mark this instance knows of still refuses the account while the store is unreachable.
    const auto cached = redis_ != nullptr ? redis_->registryCache().action(identity.account)
                                          : std::optional<std::string>();
    const auto action = !cached              ? store_failure_action_
                        : *cached == "DUNNO" ? Action::Dunno
                                             : registry_action_;
    if (log::peerWarningAllowed()) {
      spdlog::warn("state store failed for account={}: {} (answering {}{})",
                   quoteForLog(identity.account), state.error().message,
                   protocol::actionName(action), cached ? ", the account's cached mark" : "");
    }
    if (cached) {
      SASLGUARD_COUNT(registry_cache_answers_total);
      record.outcome = "registry-cached";
      record.decided_by = "registry";
      record.verdicts.push_back({"registry", action, "marked (cached; the store failed)", false});
      return finish(record, action,
                    action == Action::Dunno ? std::string_view() : settings_->registry.reply_text,
                    work.started, reply);
    }
    record.outcome = "store-error";
    return finish(record, action, defaultText(action), work.started, reply);
  }
  if (state->mark) {
    SASLGUARD_COUNT(registry_hits_total);
    record.outcome = "registry";
    record.decided_by = "registry";
    // A log-only mark (a LOG listing) is recorded and shown, never enforced.
    const auto action = state->mark->action == "DUNNO" ? Action::Dunno : registry_action_;
    metrics::countVerdict("registry", action, false);
    record.verdicts.push_back({"registry", action, state->mark->reason, false});
    return finish(record, action,
                  action == Action::Dunno ? std::string_view() : settings_->registry.reply_text,
                  work.started, reply);
  }

  // 4. detectors
  record.outcome = "evaluated";
  const DetectorContext context{request, identity, record.at};
  for (std::size_t i = 0; i < detectors_.size(); ++i) {
    const auto& p = work.planned[i];
    const DetectorResults results{
        std::span(state->counters).subspan(p.counters_begin, p.counters_end - p.counters_begin),
        std::span(state->sets).subspan(p.sets_begin, p.sets_end - p.sets_begin)};
    DetectorContext detector_context = context;
    if (lookups != nullptr) {
      for (const auto& [index, looked_up] : lookups->verdicts) {
        if (index == i) detector_context.looked_up = &looked_up;
      }
    }
    auto verdict = detectors_[i].detector->evaluate(detector_context, results);
    const bool shadow = detectors_[i].shadow;
    if (verdict.counted) work.counted.push_back({verdict.detector, *verdict.counted, shadow});
    if (!verdict.hasOpinion()) continue;
    record.verdicts.push_back(
        {std::string(verdict.detector), verdict.action, verdict.reason, shadow});
    metrics::countVerdict(verdict.detector, verdict.action, shadow);
    if (shadow) continue;  // counted by countVerdict (shadow_verdicts_total)
    // A listing marks the account even when another detector's answer is more severe.
    if (verdict.mark && (!work.marking || verdict.action > work.marking->action)) {
      work.marking = verdict;
    }
    if (!work.winner || verdict.action > work.winner->action) work.winner = std::move(verdict);
  }

  // 5. decide
  if (!work.winner) {
    record.action = Action::Dunno;
    for (const auto& c : work.counted) {
      logCounted(request, record, c.detector, c.message, c.shadow);
    }
    return finish(record, Action::Dunno, {}, work.started, reply);
  }
  record.decided_by = std::string(work.winner->detector);
  if (work.marking) return std::nullopt;  // the caller records the mark, then conclude()
  return conclude(request, reply, work);
}

Action Pipeline::conclude(const protocol::Request& request, std::string& reply,
                          InProgress& work) const {
  auto& record = work.record;
  const auto& winner = *work.winner;
  record.action = winner.action;
  for (const auto& c : work.counted) logCounted(request, record, c.detector, c.message, c.shadow);
  const auto text =
      winner.reply_text.empty() ? defaultText(winner.action) : std::string_view(winner.reply_text);
  return finish(record, winner.action, text, work.started, reply);
}

store::Mark Pipeline::markFor(const Verdict& verdict, TimePoint now) const {
  store::Mark mark;
  mark.detector = std::string(verdict.detector);
  mark.reason = verdict.reason;
  mark.evidence = verdict.evidence;
  mark.action = std::string(protocol::actionName(verdict.action));
  mark.first_seen = now;
  mark.last_seen = now;
  if (verdict.mark_for.count() > 0) mark.expires = now + verdict.mark_for;
  return mark;
}

void Pipeline::recordMark(const Identity& identity, const Verdict& verdict,
                          const protocol::Request& request, TimePoint now, DecisionRecord& record,
                          const Result<store::MarkOutcome>& outcome) const {
  if (!outcome) {
    SASLGUARD_COUNT(store_errors_total);
    spdlog::error("could not record the compromise mark for account={} client={}: {}",
                  quoteForLog(identity.account), quoteForLog(request.get(Attr::client_address)),
                  outcome.error().message);
    return;
  }
  if (outcome->is_new) {
    SASLGUARD_COUNT(marks_total);
    record.new_mark = true;
    spdlog::warn("account={} marked compromised by {}: {}", quoteForLog(identity.account),
                 verdict.detector, verdict.reason);
    if (notifier_ != nullptr) {
      notify::Notice notice;
      notice.account = identity.account;
      notice.detector = std::string(verdict.detector);
      notice.action = verdict.action == Action::Dunno && verdict.mark
                          ? "LOG"
                          : std::string(protocol::actionName(verdict.action));
      notice.reason = verdict.reason;
      notice.evidence = verdict.evidence;
      notice.client_address = std::string(request.get(Attr::client_address));
      notice.at = now;
      for (const auto& attribute : request.attributes()) {
        notice.attributes.emplace_back(attribute.name, attribute.value);
      }
      notifier_->submit(notice);
    }
  }
}

// The event log row for a counted message; dropped rows are counted by the sink.
void Pipeline::logCounted(const protocol::Request& request, const DecisionRecord& record,
                          std::string_view detector, const CountedMessage& counted,
                          bool shadow) const {
  if (events_ == nullptr) return;
  eventlog::EventRow row;
  row.ts = record.at;
  row.sasl_username = record.account;
  row.sender = request.get(Attr::sender);
  row.client_address = record.client_address;
  row.recipient_count = counted.recipients;
  row.window_total = counted.window_total;
  row.action = std::string(protocol::actionName(record.action));
  row.detector = std::string(detector);
  row.shadow = shadow;
  events_->offer(std::move(row));
}

std::string Pipeline::detectorSummary() const {
  std::string summary;
  for (const auto& configured : detectors_) {
    if (!summary.empty()) summary += ',';
    summary += configured.detector->name();
    if (configured.shadow) summary += "(shadow)";
  }
  return summary.empty() ? "none" : summary;
}

std::string_view Pipeline::defaultText(Action action) const {
  switch (action) {
    case Action::Reject:
      return settings_->replies.reject_text;
    case Action::Defer:
      return settings_->replies.defer_text;
    case Action::Hold:
      return settings_->replies.hold_text;
    case Action::Dunno:
      return {};
  }
  return {};
}

Action Pipeline::finish(DecisionRecord& record, Action action, std::string_view text,
                        std::chrono::steady_clock::time_point started, std::string& reply) const {
  protocol::appendReply(reply, action, text);
  record.action = action;
  record.duration_us =
      static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::steady_clock::now() - started)
                                     .count());
  const auto level = action == Action::Dunno && record.verdicts.empty() ? spdlog::level::debug
                                                                        : spdlog::level::info;
  if (spdlog::should_log(level)) spdlog::log(level, "{}", formatDecision(record, log::jsonMode()));
  recent_.add(std::move(record));
  return action;
}

const Detector* Pipeline::detector(std::string_view name) const {
  for (const auto& configured : detectors_) {
    if (configured.detector->name() == name) return configured.detector.get();
  }
  return nullptr;
}

}  // namespace saslguard::engine
