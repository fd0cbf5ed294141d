// detector.hpp — the interface every detector implements. A detector first declares the state
// operations it needs (plan), the pipeline runs all of them in one store call, then the detector
// judges the request from their results (evaluate). A detector that must ask the network (DNS)
// does so in lookup(), awaited before the store call; its verdict reaches evaluate() in the
// context. Detectors hold no mutable state of their own.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <span>
#include <string_view>

#include "common/clock.hpp"
#include "config/settings.hpp"
#include "engine/verdict.hpp"
#include "protocol/request.hpp"
#include "store/store.hpp"

namespace saslguard::enrich {
class DnsResolver;
}

namespace saslguard::engine {

// What a worker thread offers detectors that wait for the network; used only on that thread.
struct Enrichers {
  std::shared_ptr<enrich::DnsResolver> dns;
};

struct DetectorContext {
  const protocol::Request& request;
  const Identity& identity;
  TimePoint now;
  const Verdict* looked_up = nullptr;  // this detector's lookup() verdict, when it ran one
};

// The results of the operations one detector planned, in the order it added them.
struct DetectorResults {
  std::span<const store::CounterResult> counters;
  std::span<const store::SetResult> sets;
};

class Detector {
 public:
  virtual ~Detector() = default;
  virtual std::string_view name() const = 0;
  // Adds this request's counter and set operations to the batch (none by default).
  virtual void plan(const DetectorContext&, store::Batch&) const {}
  // Whether this request needs lookup() first (cheap; most requests: no). Called only for
  // authenticated, not allow-listed accounts that are not marked compromised.
  virtual bool wantsLookup(const DetectorContext&) const { return false; }
  virtual bool looksUp() const { return false; }  // true: wantsLookup() may say yes
  // Asks the network; always completes (timeouts are the enricher's). Runs on the worker thread.
  virtual boost::asio::awaitable<Verdict> lookup(const DetectorContext& context,
                                                 const Enrichers& enrichers) const;
  virtual Verdict evaluate(const DetectorContext& context,
                           const DetectorResults& results) const = 0;
};

using DetectorPtr = std::unique_ptr<const Detector>;

// A detector as the pipeline runs it: with its enabled/shadow switches.
struct ConfiguredDetector {
  DetectorPtr detector;
  bool shadow = false;
};

}  // namespace saslguard::engine
