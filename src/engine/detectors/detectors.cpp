// detectors.cpp — the registration list: adding a detector is its own file plus one line here
// (and its settings section in config/settings.hpp).
#include "engine/detectors/detectors.hpp"

#include "engine/detectors/denylist.hpp"
#include "engine/detectors/geo.hpp"
#include "engine/detectors/quota.hpp"
#include "engine/detectors/reputation.hpp"

namespace saslguard::engine {
namespace {

class DetectorList {
 public:
  template <class DetectorType, class SettingsType>
  void add(const SettingsType& settings) {
    if (!settings.enabled || !error_.empty()) return;
    auto detector = DetectorType::create(settings);
    if (!detector) {
      error_ = detector.error().message;
      return;
    }
    detectors_.push_back({std::move(*detector), settings.shadow});
  }

  Result<std::vector<ConfiguredDetector>> finish() {
    if (!error_.empty()) return fail(error_);
    return std::move(detectors_);
  }

 private:
  std::vector<ConfiguredDetector> detectors_;
  std::string error_;
};

}  // namespace

Result<std::vector<ConfiguredDetector>> buildDetectors(const config::Settings& settings) {
  DetectorList list;
  list.add<DenylistDetector>(settings.detectors.denylist);
  list.add<QuotaDetector>(settings.detectors.quota);
  list.add<ReputationDetector>(settings.detectors.reputation);
  list.add<GeoDetector>(settings.detectors.geo);
  return list.finish();
}

}  // namespace saslguard::engine
