// denylist.hpp — the simplest detector: accounts, sender addresses or client networks that an
// operator has listed are answered with the configured action (default REJECT).
#pragma once

#include <string>
#include <unordered_set>

#include "common/network.hpp"
#include "engine/detector.hpp"

namespace saslguard::engine {

class DenylistDetector final : public Detector {
 public:
  static Result<DetectorPtr> create(const config::DenylistSettings& settings);
  std::string_view name() const override { return "denylist"; }
  Verdict evaluate(const DetectorContext& context, const DetectorResults& results) const override;

 private:
  DenylistDetector() = default;
  Action action_ = Action::Reject;
  std::string reply_text_;
  std::unordered_set<std::string> accounts_;
  std::unordered_set<std::string> senders_;
  NetworkList networks_;
};

}  // namespace saslguard::engine
