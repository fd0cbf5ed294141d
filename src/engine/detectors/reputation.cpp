// reputation.cpp — see reputation.hpp. The order, the skips and the "any 127.x counts" default
// follow the Abusix daemon; its bugs (no timeout, answers outside 127/8 taken as listings, a
// missing action crashing the worker) are not kept.
#include "engine/detectors/reputation.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "engine/enrichers.hpp"
#include "enrich/dns.hpp"
#include "metrics/metrics.hpp"

namespace saslguard::engine {

namespace {

std::string addressText(std::uint32_t a) {
  return fmt::format("{}.{}.{}.{}", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
}

bool inLoopback8(std::uint32_t a) {
  return (a >> 24) == 127;
}

// The first answer that counts as a listing, if any.
std::optional<std::uint32_t> listedCode(const config::ZoneSpec& spec,
                                        const std::vector<std::uint32_t>& answers) {
  for (const auto a : answers) {
    if (!inLoopback8(a)) continue;
    if (spec.listed.empty()) return a;
    const auto address = boost::asio::ip::address(boost::asio::ip::address_v4(a));
    for (const auto& network : spec.listed) {
      if (network.contains(address)) return a;
    }
  }
  return std::nullopt;
}

Action parseZoneAction(std::string_view text, bool& log_only) {
  log_only = text == "LOG";
  if (text == "REJECT") return Action::Reject;
  if (text == "HOLD") return Action::Hold;
  if (text == "DEFER") return Action::Defer;
  return Action::Dunno;
}

std::string jsonEscape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      out += fmt::format("\\u{:04x}", u);
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

Result<std::vector<ReputationDetector::Zone>> reputationZones(
    const config::ReputationSettings& settings) {
  std::string key = settings.api_key;
  if (!settings.api_key_file.empty()) {
    auto read = readFirstLine(settings.api_key_file, "detectors.reputation.api_key_file");
    if (!read) return tl::unexpected(read.error());
    key = std::move(*read);
  }
  auto entries = config::presetZones(settings.preset);
  entries.insert(entries.end(), settings.zones.begin(), settings.zones.end());
  if (entries.empty()) {
    return fail("detectors.reputation: no zone configured (set preset = \"abusix\" or zones)");
  }
  bool detector_log_only = false;
  const auto detector_action = parseZoneAction(settings.action, detector_log_only);
  std::vector<ReputationDetector::Zone> zones;
  for (const auto& entry : entries) {
    auto spec = config::parseZoneSpec(entry);
    if (!spec) return fail("detectors.reputation.zones: " + spec.error().message);
    if (spec->keyed && key.empty()) {
      return fail("detectors.reputation: zone " + spec->zone +
                  " needs the API key (api_key or api_key_file)");
    }
    if (spec->keyed) {
      const bool label = std::all_of(key.begin(), key.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_';
      });
      if (!label || key.size() > 63) {
        return fail("detectors.reputation: the API key is not a DNS label (letters, digits, -)");
      }
    }
    ReputationDetector::Zone zone;
    zone.suffix = "." + (spec->keyed ? key + "." : std::string()) + spec->zone;
    if (spec->action) {
      zone.action = parseZoneAction(*spec->action, zone.log_only);
    } else {
      zone.action = detector_action;
      zone.log_only = detector_log_only;
    }
    zone.spec = std::move(*spec);
    zones.push_back(std::move(zone));
  }
  return zones;
}

Result<DetectorPtr> ReputationDetector::create(const config::ReputationSettings& settings) {
  std::unique_ptr<ReputationDetector> detector(new ReputationDetector());
  auto zones = reputationZones(settings);
  if (!zones) return tl::unexpected(zones.error());
  detector->zones_ = std::move(*zones);
  detector->reply_text_ = settings.reply_text;
  detector->failure_action_ =
      settings.dns_failure_action == "DEFER" ? Action::Defer : Action::Dunno;
  detector->mark_for_ = std::chrono::seconds(settings.mark_expiry_s);
  return DetectorPtr(std::move(detector));
}

std::string ReputationDetector::queryName(const Zone& zone, std::string_view item) {
  if (zone.spec.kind == config::ZoneSpec::Kind::kClientIp) {
    auto reversed = enrich::reversedAddress(item);
    if (!reversed) return {};
    return *reversed + zone.suffix;
  }
  return enrich::sha1Hex(toLowerAscii(item)) + zone.suffix;
}

// Postfix asks at RCPT once per recipient; the first RCPT of each message is looked up (the
// caller skips the rest of the message by its instance).
bool ReputationDetector::wantsLookup(const DetectorContext& context) const {
  return context.identity.authenticated && context.request.stage() == protocol::Stage::Rcpt;
}

boost::asio::awaitable<std::optional<Verdict>> ReputationDetector::check(
    const Zone& zone, std::string_view item, const DetectorContext& context,
    const Enrichers& enrichers) const {
  auto query = queryName(zone, item);
  if (query.empty()) co_return std::nullopt;
  SASLGUARD_COUNT(reputation_lookups_total);
  enrich::DnsAnswer answer;
  if (enrichers.dns) {
    answer = co_await enrichers.dns->resolve(std::move(query));
  } else {
    answer.error = "no usable DNS resolver";
  }
  const auto kind = config::zoneKindName(zone.spec.kind);
  switch (answer.status) {
    case enrich::DnsStatus::kNotFound:
      co_return std::nullopt;
    case enrich::DnsStatus::kTimeout:
    case enrich::DnsStatus::kFailed: {
      SASLGUARD_COUNT(reputation_failures_total);
      if (log::peerWarningAllowed()) {
        spdlog::warn("reputation lookup of the {} in {} failed: {} (answering {})", kind,
                     zone.spec.zone,
                     answer.status == enrich::DnsStatus::kTimeout ? "timeout" : answer.error,
                     protocol::actionName(failure_action_));
      }
      Verdict verdict;
      verdict.detector = name();
      verdict.action = failure_action_;
      verdict.lookup_failed = true;
      verdict.reason = fmt::format("{} lookup failed", zone.spec.zone);
      co_return verdict;
    }
    case enrich::DnsStatus::kFound:
      break;
  }
  const auto code = listedCode(zone.spec, answer.addresses);
  if (!code) {
    // An answer outside 127.0.0.0/8 is a broken or hijacked zone, not a listing.
    for (const auto a : answer.addresses) {
      if (!inLoopback8(a)) {
        SASLGUARD_COUNT(dns_invalid_answers_total);
        if (log::peerWarningAllowed()) {
          spdlog::warn("reputation zone {} answered {} (outside 127.0.0.0/8): ignored",
                       zone.spec.zone, addressText(a));
        }
        break;
      }
    }
    co_return std::nullopt;
  }
  SASLGUARD_COUNT(reputation_listed_total);
  Verdict verdict;
  verdict.detector = name();
  verdict.action = zone.action;
  verdict.mark = true;
  verdict.mark_for = mark_for_;
  verdict.reply_text = reply_text_;
  const auto client = context.request.get(protocol::Attr::client_address);
  const bool by_ip = zone.spec.kind == config::ZoneSpec::Kind::kClientIp;
  const auto recipient_hash = by_ip ? std::string() : enrich::sha1Hex(toLowerAscii(item));
  verdict.reason = by_ip ? fmt::format("client address {} is listed in {} ({})", item,
                                       zone.spec.zone, addressText(*code))
                         : fmt::format("recipient {} is listed in {} ({})", quoteForLog(item),
                                       zone.spec.zone, addressText(*code));
  verdict.evidence =
      fmt::format(R"({{"zone":"{}","kind":"{}","code":"{}","client_address":"{}","recipient":"{}",)"
                  R"("recipient_sha1":"{}","instance":"{}","log_only":{}}})",
                  jsonEscape(zone.spec.zone), kind, addressText(*code), jsonEscape(client),
                  by_ip ? std::string() : jsonEscape(item), recipient_hash,
                  jsonEscape(context.request.get(protocol::Attr::instance)), zone.log_only);
  co_return verdict;
}

boost::asio::awaitable<Verdict> ReputationDetector::lookup(const DetectorContext& context,
                                                           const Enrichers& enrichers) const {
  // Client address first; the recipient only when the address is not listed (as Abusix).
  std::optional<Verdict> failure;
  for (const auto kind :
       {config::ZoneSpec::Kind::kClientIp, config::ZoneSpec::Kind::kHashedRecipient}) {
    const auto item = kind == config::ZoneSpec::Kind::kClientIp
                          ? context.request.get(protocol::Attr::client_address)
                          : context.request.get(protocol::Attr::recipient);
    if (item.empty()) continue;
    for (const auto& zone : zones_) {
      if (zone.spec.kind != kind) continue;
      auto verdict = co_await check(zone, item, context, enrichers);
      if (!verdict) continue;
      if (verdict->lookup_failed) {
        if (!failure) failure = std::move(verdict);
        continue;
      }
      co_return std::move(*verdict);
    }
  }
  if (failure) co_return std::move(*failure);
  co_return Verdict{};
}

Verdict ReputationDetector::evaluate(const DetectorContext& context, const DetectorResults&) const {
  if (context.looked_up == nullptr) return {};
  return *context.looked_up;
}

Result<void> selfTestReputationZones(const config::Settings& settings) {
  const auto& reputation = settings.detectors.reputation;
  if (!reputation.enabled || reputation.self_test == "off") return {};
  auto zones = reputationZones(reputation);
  if (!zones) return tl::unexpected(zones.error());
  boost::asio::io_context context;
  auto options = dnsOptionsFrom(settings.dns);
  options.max_ttl = std::chrono::seconds(0);
  auto resolver = enrich::DnsResolver::create(context, options, enrich::makeDnsCache(options));
  if (!resolver) return fail("dns: " + resolver.error().message);
  std::vector<std::string> problems;
  for (const auto& zone : *zones) {
    if (zone.spec.test_item.empty()) continue;
    const auto name = ReputationDetector::queryName(zone, zone.spec.test_item);
    boost::asio::co_spawn(
        context,
        [&, name]() -> boost::asio::awaitable<void> {
          const auto answer = co_await (*resolver)->resolve(name);
          std::string got;
          if (answer.status == enrich::DnsStatus::kFound) {
            if (listedCode(zone.spec, answer.addresses)) co_return;
            for (const auto a : answer.addresses) got += (got.empty() ? "" : ",") + addressText(a);
          } else if (answer.status == enrich::DnsStatus::kNotFound) {
            got = "not listed (NXDOMAIN)";
          } else if (answer.status == enrich::DnsStatus::kTimeout) {
            got = "no answer (timeout)";
          } else {
            got = "an error: " + answer.error;
          }
          problems.push_back(fmt::format("zone {}: test point {} answered {}, not a listing{}",
                                         zone.spec.zone, zone.spec.test_item, got,
                                         zone.spec.keyed ? " (check the API key)" : ""));
        },
        boost::asio::detached);
  }
  context.run();
  if (problems.empty()) return {};
  std::string message = "reputation self-test failed: ";
  for (std::size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
  if (reputation.self_test == "warn") {
    spdlog::warn("{} (detectors.reputation.self_test = \"warn\": serving anyway)", message);
    return {};
  }
  return fail(message);
}

}  // namespace saslguard::engine
