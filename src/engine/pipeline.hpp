// pipeline.hpp — the decision for one policy request, top to bottom in Pipeline::decide:
// identity → allow lists → compromise registry + detector state (one store call) → detectors →
// most severe verdict → mark → reply. A Pipeline is immutable; a reload builds a new one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/settings.hpp"
#include "engine/decision.hpp"
#include "engine/detector.hpp"
#include "engine/identity.hpp"
#include "engine/lists.hpp"
#include "eventlog/event.hpp"
#include "store/store.hpp"

namespace saslguard::engine {

class Pipeline {
 public:
  // `events` (may be null) receives a row for every message a detector counted.
  static Result<std::shared_ptr<const Pipeline>> build(config::SettingsPtr settings,
                                                       store::Store& store, RecentDecisions& recent,
                                                       eventlog::EventSink* events = nullptr);

  // The same with a given detector list instead of the configured one (tests, benchmarks).
  static Result<std::shared_ptr<const Pipeline>> buildWith(
      config::SettingsPtr settings, store::Store& store, RecentDecisions& recent,
      std::vector<ConfiguredDetector> detectors, eventlog::EventSink* events = nullptr);

  // Decides one request and appends the reply ("action=...\n\n") to `reply`.
  Action decide(const protocol::Request& request, TimePoint now, std::string& reply) const;

  const config::Settings& settings() const { return *settings_; }
  const IdentityResolver& identity() const { return identity_; }
  // The detectors in the order they run, e.g. "denylist,quota(shadow)", or "none".
  std::string detectorSummary() const;

 private:
  Pipeline(config::SettingsPtr settings, store::Store& store, RecentDecisions& recent,
           AllowLists allow, std::vector<ConfiguredDetector> detectors,
           eventlog::EventSink* events);

  std::string_view defaultText(Action action) const;
  void recordMark(const Identity& identity, const Verdict& verdict,
                  const protocol::Request& request, TimePoint now, DecisionRecord& record) const;
  void logCounted(const protocol::Request& request, const DecisionRecord& record,
                  std::string_view detector, const CountedMessage& counted, bool shadow) const;
  Action finish(DecisionRecord& record, Action action, std::string_view text,
                std::chrono::steady_clock::time_point started, std::string& reply) const;

  config::SettingsPtr settings_;
  store::Store& store_;
  RecentDecisions& recent_;
  eventlog::EventSink* events_;
  IdentityResolver identity_;
  AllowLists allow_;
  std::vector<ConfiguredDetector> detectors_;
  Action registry_action_;
  Action store_failure_action_ = Action::Dunno;
};

using PipelinePtr = std::shared_ptr<const Pipeline>;

}  // namespace saslguard::engine
