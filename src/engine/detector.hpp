// detector.hpp — the interface every detector implements. A detector first declares the state
// operations it needs (plan), the pipeline runs all of them in one store call, then the detector
// judges the request from their results (evaluate). Detectors hold no mutable state of their own.
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "common/clock.hpp"
#include "config/settings.hpp"
#include "engine/verdict.hpp"
#include "protocol/request.hpp"
#include "store/store.hpp"

namespace saslguard::engine {

struct DetectorContext {
  const protocol::Request& request;
  const Identity& identity;
  TimePoint now;
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
