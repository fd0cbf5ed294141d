// reputation.hpp — the Abusix AUTH policy daemon's check: on the first RCPT of each message of
// an authenticated account, the client address and then (only if that is not listed) the SHA-1
// of the recipient are looked up in DNS reputation zones; a listing marks the account
// compromised. See docs/detectors/reputation.md.
#pragma once

#include <string>
#include <vector>

#include "config/zones.hpp"
#include "engine/detector.hpp"

namespace saslguard::engine {

class ReputationDetector final : public Detector {
 public:
  struct Zone {
    config::ZoneSpec spec;
    std::string suffix;  // ".<key>.<zone>" or ".<zone>": appended to the reversed item
    Action action = Action::Dunno;
    bool log_only = false;  // LOG: mark and log, answer DUNNO
  };

  static Result<DetectorPtr> create(const config::ReputationSettings& settings);
  std::string_view name() const override { return "reputation"; }
  bool wantsLookup(const DetectorContext& context) const override;
  bool looksUp() const override { return true; }
  boost::asio::awaitable<Verdict> lookup(const DetectorContext& context,
                                         const Enrichers& enrichers) const override;
  Verdict evaluate(const DetectorContext& context, const DetectorResults& results) const override;

  const std::vector<Zone>& zones() const { return zones_; }
  // The DNS name of `item` in `zone` (the item reversed or hashed, then the key, then the zone);
  // empty when a client-ip item is not an IP address. Holds the API key: never log it.
  static std::string queryName(const Zone& zone, std::string_view item);

 private:
  ReputationDetector() = default;
  boost::asio::awaitable<std::optional<Verdict>> check(const Zone& zone, std::string_view item,
                                                       const DetectorContext& context,
                                                       const Enrichers& enrichers) const;

  std::vector<Zone> zones_;
  std::string reply_text_;
  Action failure_action_ = Action::Dunno;
  std::chrono::seconds mark_for_{0};
};

// Looks up every zone's test point with the configured DNS servers; fails naming the zone and
// the answer when one is not listed as it must be. Blocks for at most the DNS timeout.
Result<void> selfTestReputationZones(const config::Settings& settings);

// The zones detectors.reputation configures (preset first, then zones), with the API key read.
Result<std::vector<ReputationDetector::Zone>> reputationZones(
    const config::ReputationSettings& settings);

}  // namespace saslguard::engine
