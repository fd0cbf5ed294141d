// denylist.cpp — see denylist.hpp. Names compare case-insensitively (stored lower-cased).
#include "engine/detectors/denylist.hpp"

#include "common/strings.hpp"

namespace saslguard::engine {

Result<DetectorPtr> DenylistDetector::create(const config::DenylistSettings& settings) {
  std::unique_ptr<DenylistDetector> detector(new DenylistDetector());
  auto action = protocol::parseAction(settings.action);
  if (!action) return fail("detectors.denylist.action: unknown action '" + settings.action + "'");
  detector->action_ = *action;
  detector->reply_text_ = settings.reply_text;
  for (const auto& a : settings.accounts) detector->accounts_.insert(toLowerAscii(trim(a)));
  for (const auto& s : settings.senders) detector->senders_.insert(toLowerAscii(trim(s)));
  auto networks = NetworkList::parse(settings.networks);
  if (!networks) return fail("detectors.denylist.networks: " + networks.error().message);
  detector->networks_ = std::move(*networks);
  return DetectorPtr(std::move(detector));
}

Verdict DenylistDetector::evaluate(const DetectorContext& context, const DetectorResults&) const {
  const auto listed = [&](std::string reason, std::string evidence) {
    Verdict verdict;
    verdict.action = action_;
    verdict.detector = name();
    verdict.reason = std::move(reason);
    verdict.evidence = std::move(evidence);
    verdict.reply_text = reply_text_;
    return verdict;
  };
  if (accounts_.contains(context.identity.account)) {
    return listed("account is on the deny list", R"({"list":"accounts"})");
  }
  if (!senders_.empty()) {
    const auto sender = toLowerAscii(context.request.get(protocol::Attr::sender));
    if (senders_.contains(sender)) {
      return listed("sender address is on the deny list", R"({"list":"senders"})");
    }
  }
  if (!networks_.empty()) {
    const auto client = context.request.get(protocol::Attr::client_address);
    if (auto address = parseAddress(client); address && networks_.contains(*address)) {
      return listed("client address is on the deny list", R"({"list":"networks"})");
    }
  }
  return {};
}

}  // namespace saslguard::engine
