// pipeline.hpp — the decision for one policy request, top to bottom in Pipeline::decide:
// identity → allow lists → compromise registry + detector state (one store call) → detectors →
// most severe verdict → mark → reply. Detectors that wait for the network (DNS) run their
// lookups() first, awaited by the connection; so is the store call when the store is Redis
// (decideAsync), and then both run at once (lookUpAndDecideAsync). A Pipeline is immutable; a
// reload builds a new one.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/container/small_vector.hpp>
#include <memory>
#include <string>
#include <vector>

#include "config/settings.hpp"
#include "engine/decision.hpp"
#include "engine/detector.hpp"
#include "engine/identity.hpp"
#include "engine/lists.hpp"
#include "enrich/ldap.hpp"
#include "eventlog/event.hpp"
#include "store/store.hpp"

namespace saslguard::enrich {
class DnsCache;
struct DnsOptions;
class LdapMapper;
}  // namespace saslguard::enrich
namespace saslguard::notify {
class Notifier;
}
namespace saslguard::store {
class RedisStore;
}

namespace saslguard::engine {

// The verdicts of the detectors that looked something up for one request, by detector index.
struct Lookups {
  boost::container::small_vector<std::pair<std::size_t, Verdict>, 2> verdicts;
  bool failed = false;  // a lookup failed (the request may be looked up again)
  // The LDAP mapping of the identity, when [ldap] is on and it was not cached.
  std::optional<enrich::LdapAnswer> mapping;
};

class Pipeline {
 public:
  // `events` (may be null) receives a row for every message a detector counted.
  // `notifier` (may be null) hears of every new compromise mark. `previous` (a reload: the
  // pipeline being replaced) hands over its LDAP mapper and DNS cache when their settings did
  // not change, so a reload keeps their caches and never waits for a search in flight.
  static Result<std::shared_ptr<const Pipeline>> build(config::SettingsPtr settings,
                                                       store::Store& store, RecentDecisions& recent,
                                                       eventlog::EventSink* events = nullptr,
                                                       notify::Notifier* notifier = nullptr,
                                                       const Pipeline* previous = nullptr);

  // The same with a given detector list instead of the configured one (tests, benchmarks).
  static Result<std::shared_ptr<const Pipeline>> buildWith(
      config::SettingsPtr settings, store::Store& store, RecentDecisions& recent,
      std::vector<ConfiguredDetector> detectors, eventlog::EventSink* events = nullptr,
      notify::Notifier* notifier = nullptr, const Pipeline* previous = nullptr);
  ~Pipeline();

  // Whether any detector may look something up (false: needsLookups() is always false).
  bool hasLookups() const { return has_lookups_; }
  // Whether `request` needs lookups() before decide(): an authenticated account, not allow-listed,
  // not marked compromised, and a detector that asks for one.
  // `detector_lookups` false: only the identity mapping (a later request of a message whose
  // first RCPT was looked up already).
  bool needsLookups(const protocol::Request& request, TimePoint now,
                    bool detector_lookups = true) const;
  // Maps the identity through LDAP (when on and not cached), then runs the lookups of the
  // detectors that want one; always completes (DNS and LDAP timeouts bound it).
  boost::asio::awaitable<Lookups> lookups(const protocol::Request& request, TimePoint now,
                                          const Enrichers& enrichers,
                                          bool detector_lookups = true) const;
  // Whether identities are mapped through LDAP (every request may need a lookup then).
  bool mapsIdentities() const { return ldap_ != nullptr; }
  // The resolver configuration and the answer cache this pipeline's workers share.
  const enrich::DnsOptions& dnsOptions() const { return *dns_options_; }
  const std::shared_ptr<enrich::DnsCache>& dnsCache() const { return dns_cache_; }

  // Decides one request and appends the reply ("action=...\n\n") to `reply`. `lookups` are
  // the results of lookups() for this request, when it needed them.
  Action decide(const protocol::Request& request, TimePoint now, std::string& reply,
                const Lookups* lookups = nullptr) const;
  // Whether the store answers over the network (Redis): then every request goes through
  // decideAsync, which awaits the store instead of blocking the worker thread.
  bool awaitsStore() const { return redis_ != nullptr; }
  // decide() with the store call (and a new mark) awaited. `request` and `reply` must stay put
  // until it completes.
  boost::asio::awaitable<Action> decideAsync(const protocol::Request& request, TimePoint now,
                                             std::string& reply,
                                             const Lookups* lookups = nullptr) const;
  // lookups() and decideAsync() in one, for a store on the network: the detectors' lookups
  // (DNS) run while the store's round trip is under way, so the request waits for the slower
  // of the two instead of both in turn. `lookups` receives what lookups() would have returned.
  boost::asio::awaitable<Action> lookUpAndDecideAsync(const protocol::Request& request,
                                                      TimePoint now, std::string& reply,
                                                      const Enrichers& enrichers,
                                                      bool detector_lookups,
                                                      Lookups& lookups) const;

  const config::Settings& settings() const { return *settings_; }
  const config::SettingsPtr& settingsPtr() const { return settings_; }
  // The detector called `name`, or null when it is not enabled (the admin API reaches geo's
  // custom settings and description through it).
  const Detector* detector(std::string_view name) const;
  // The identity mapper; null when [ldap] is off.
  const std::shared_ptr<enrich::LdapMapper>& ldapMapper() const { return ldap_; }
  const IdentityResolver& identity() const { return identity_; }
  // The detectors in the order they run, e.g. "denylist,quota(shadow)", or "none".
  std::string detectorSummary() const;

 private:
  Pipeline(config::SettingsPtr settings, store::Store& store, RecentDecisions& recent,
           AllowLists allow, std::vector<ConfiguredDetector> detectors, eventlog::EventSink* events,
           notify::Notifier* notifier);

  // One decision between its steps: decide() and decideAsync() run the same steps and differ
  // only in how they wait for the store.
  struct InProgress;
  // Steps 1-3 up to the store call: the identity, allow lists and the batch the detectors plan.
  // An answer when the request is decided without the store.
  std::optional<Action> plan(const protocol::Request& request, TimePoint now, std::string& reply,
                             const Lookups* lookups, InProgress& work) const;
  // Steps 3-5 after the store call, up to the mark; an answer unless a mark must be recorded
  // first (work.marking).
  std::optional<Action> evaluate(const protocol::Request& request, std::string& reply,
                                 const Lookups* lookups, InProgress& work,
                                 Result<store::BatchResult>& state) const;
  // The LDAP part of lookups(): the identity, mapped (nullopt: unauthenticated, or not mapped).
  boost::asio::awaitable<std::optional<Identity>> mapIdentity(const protocol::Request& request,
                                                              Lookups& lookups) const;
  // The detectors' part of lookups(), for a mapped identity.
  boost::asio::awaitable<void> detectorLookups(const DetectorContext& context,
                                               const Enrichers& enrichers, Lookups& lookups) const;
  // decideAsync() after the store call: evaluate, await a new mark, conclude.
  boost::asio::awaitable<Action> finishAsync(const protocol::Request& request, TimePoint now,
                                             std::string& reply, const Lookups* lookups,
                                             InProgress& work,
                                             Result<store::BatchResult>& state) const;
  // The rest of step 5 once the mark (if any) was recorded.
  Action conclude(const protocol::Request& request, std::string& reply, InProgress& work) const;
  store::Mark markFor(const Verdict& verdict, TimePoint now) const;
  std::string_view defaultText(Action action) const;
  // The account after the LDAP mapping: the mapping `lookups` brought, else a cached one.
  // nullopt answer: the mapping failed or was not available (`problem` says which reply).
  enum class Mapping { kOk, kSkip, kFailed };
  Mapping applyMapping(Identity& identity, const Lookups* lookups) const;
  void recordMark(const Identity& identity, const Verdict& verdict,
                  const protocol::Request& request, TimePoint now, DecisionRecord& record,
                  const Result<store::MarkOutcome>& outcome) const;
  void logCounted(const protocol::Request& request, const DecisionRecord& record,
                  std::string_view detector, const CountedMessage& counted, bool shadow) const;
  Action finish(DecisionRecord& record, Action action, std::string_view text,
                std::chrono::steady_clock::time_point started, std::string& reply) const;

  config::SettingsPtr settings_;
  store::Store& store_;
  store::RedisStore* redis_ = nullptr;  // store_ when it is the Redis store
  RecentDecisions& recent_;
  eventlog::EventSink* events_;
  notify::Notifier* notifier_;
  bool has_lookups_ = false;
  std::unique_ptr<enrich::DnsOptions> dns_options_;
  std::shared_ptr<enrich::DnsCache> dns_cache_;
  std::shared_ptr<enrich::LdapMapper> ldap_;
  bool ldap_skip_unknown_ = false;
  Action ldap_failure_action_ = Action::Dunno;
  IdentityResolver identity_;
  AllowLists allow_;
  std::vector<ConfiguredDetector> detectors_;
  Action registry_action_;
  Action store_failure_action_ = Action::Dunno;
};

using PipelinePtr = std::shared_ptr<const Pipeline>;

}  // namespace saslguard::engine
