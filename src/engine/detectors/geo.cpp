// geo.cpp — see geo.hpp. The decision is geoip-policyd's (seeds-behaviour §4.4): the request's IP
// and country are added first, then a count strictly greater than its limit fires; home and
// foreign are counted apart; trusted lists replace counting. Fixed here: identities ignore case,
// every update is atomic in the store, and the IP is recorded even when the country check fires
// (geoip-policyd skipped it through a short-circuit; the answer is the same).
#include "engine/detectors/geo.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/log.hpp"
#include "common/strings.hpp"
#include "metrics/metrics.hpp"

namespace saslguard::engine {

namespace {

bool contains(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::vector<std::string> upperCodes(const std::vector<std::string>& codes) {
  std::vector<std::string> out;
  for (const auto& code : codes) out.push_back(toUpperAscii(trim(code)));
  return out;
}

}  // namespace

Result<DetectorPtr> GeoDetector::create(const config::GeoSettings& settings) {
  auto database = enrich::GeoIpDatabase::open(settings.database);
  if (!database) {
    if (settings.missing_database != "disable") {
      return fail("detectors.geo.database: " + database.error().message);
    }
    spdlog::warn(
        "detectors.geo: {}; running without the geo detector (missing_database = \"disable\")",
        database.error().message);
    return create(settings, nullptr);
  }
  spdlog::info("detectors.geo: using {}", (*database)->description());
  return create(settings, std::shared_ptr<enrich::GeoIpDatabase>(std::move(*database)));
}

Result<DetectorPtr> GeoDetector::create(const config::GeoSettings& settings,
                                        std::shared_ptr<enrich::GeoIpDatabase> database) {
  std::unique_ptr<GeoDetector> detector(new GeoDetector());
  auto action = protocol::parseAction(settings.action);
  if (!action) return fail("detectors.geo.action: unknown action '" + settings.action + "'");
  detector->database_ = std::move(database);
  detector->action_ = *action;
  detector->reply_text_ = settings.reply_text;
  detector->mark_ = settings.block_permanent;
  detector->ttl_s_ = static_cast<std::uint32_t>(settings.ttl_s);
  detector->ipv6_prefix_ = settings.ipv6_prefix;
  detector->database_check_interval_s_ = settings.database_check_interval_s;
  detector->home_codes_ = upperCodes(settings.home_countries);
  detector->trusted_countries_ = upperCodes(settings.trusted_countries);
  for (const auto& text : settings.trusted_networks) {
    auto network = parseNetwork(trim(text));
    if (!network) return fail("detectors.geo.trusted_networks: " + network.error().message);
    detector->trusted_networks_.push_back(*network);
  }
  auto ignored = NetworkList::parse(settings.ignore_networks);
  if (!ignored) return fail("detectors.geo.ignore_networks: " + ignored.error().message);
  detector->ignore_networks_ = std::move(*ignored);
  std::shared_ptr<const GeoCustomSettings> loaded;
  if (!settings.custom_settings_file.empty()) {
    auto custom = GeoCustomSettings::load(settings.custom_settings_file);
    if (!custom) return fail("detectors.geo." + custom.error().message);
    loaded = std::make_shared<const GeoCustomSettings>(std::move(*custom));
  }
  detector->custom_ =
      std::make_shared<GeoCustomSettingsSource>(settings.custom_settings_file, std::move(loaded));
  detector->defaults_ = Limits{settings.max_ips,
                               settings.max_countries,
                               settings.max_home_ips,
                               settings.max_home_countries,
                               &detector->home_codes_,
                               &detector->trusted_countries_,
                               &detector->trusted_networks_};
  return DetectorPtr(std::move(detector));
}

std::string GeoDetector::clientKey(const boost::asio::ip::address& address, int ipv6_prefix) {
  if (address.is_v4()) return address.to_string();
  auto v6 = address.to_v6();
  if (v6.is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_string();
  }
  auto bytes = v6.to_bytes();
  for (int bit = ipv6_prefix; bit < 128; ++bit) {
    bytes[static_cast<std::size_t>(bit / 8)] &= static_cast<unsigned char>(~(0x80u >> (bit % 8)));
  }
  if (ipv6_prefix >= 128) return v6.to_string();
  return boost::asio::ip::address_v6(bytes).to_string() + "/" + std::to_string(ipv6_prefix);
}

void GeoDetector::reloadDatabaseIfDue(TimePoint now) const {
  const auto now_s =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  auto due = next_database_check_s_.load(std::memory_order_relaxed);
  if (now_s < due) return;
  // One thread checks; the others go on with the database in use.
  if (!next_database_check_s_.compare_exchange_strong(due, now_s + database_check_interval_s_)) {
    return;
  }
  auto reloaded = database_->reloadIfChanged();
  if (!reloaded) {
    spdlog::error("detectors.geo: {}; still using {}", reloaded.error().message,
                  database_->description());
  } else if (*reloaded) {
    spdlog::info("detectors.geo: reloaded, now using {}", database_->description());
  }
}

GeoDetector::Assessment GeoDetector::assess(const DetectorContext& context) const {
  Assessment a;
  if (database_ == nullptr || !context.identity.authenticated ||
      context.request.stage() != protocol::Stage::Rcpt) {
    return a;
  }
  const auto client = context.request.get(protocol::Attr::client_address);
  const auto address = parseAddress(client);
  if (!address || ignore_networks_.contains(*address)) return a;
  a.counted = true;
  a.client_key = clientKey(*address, ipv6_prefix_);
  a.country = database_->country(client);
  a.limits = defaults_;
  a.custom = custom_->current();
  if (const auto* entry = a.custom ? a.custom->find(context.identity.account) : nullptr) {
    if (entry->ips > 0) a.limits.ips = entry->ips;
    if (entry->countries > 0) a.limits.countries = entry->countries;
    if (!entry->trusted_countries.empty()) a.limits.trusted_countries = &entry->trusted_countries;
    if (!entry->trusted_networks.empty()) a.limits.trusted_networks = &entry->trusted_networks;
    if (!entry->home_codes.empty()) {
      a.limits.home_codes = &entry->home_codes;
      if (entry->home_ips > 0) a.limits.home_ips = entry->home_ips;
      if (entry->home_countries > 0) a.limits.home_countries = entry->home_countries;
    }
  }
  a.home = a.country && contains(*a.limits.home_codes, *a.country);
  a.country_trusted = a.country && !a.limits.trusted_countries->empty() &&
                      contains(*a.limits.trusted_countries, *a.country);
  if (!a.limits.trusted_networks->empty()) {
    a.client_trusted =
        std::any_of(a.limits.trusted_networks->begin(), a.limits.trusted_networks->end(),
                    [&](const Network& n) { return n.contains(*address); });
  }
  return a;
}

GeoDetector::Description GeoDetector::describe(const DetectorContext& context) const {
  const auto a = assess(context);
  Description d;
  d.counted = a.counted;
  d.client_key = a.client_key;
  d.country = a.country.value_or("");
  d.home = a.home;
  d.trusted = a.client_trusted || a.country_trusted;
  return d;
}

// Four set operations in a fixed order — foreign countries, home countries, foreign IPs, home
// IPs — each a touch of this request's value or a count only.
void GeoDetector::plan(const DetectorContext& context, store::Batch& batch) const {
  if (database_ != nullptr) reloadDatabaseIfDue(context.now);
  const auto a = assess(context);
  if (!a.counted) return;
  const bool count_country = a.country && a.limits.trusted_countries->empty();
  const bool count_ip = a.limits.trusted_networks->empty();
  const auto op = [&](std::string_view name, bool touch, const std::string& value) {
    batch.sets.push_back({std::string(name), touch ? value : std::string(), ttl_s_});
  };
  const std::string country = a.country.value_or("");
  op(kForeignCountries, count_country && !a.home, country);
  op(kHomeCountries, a.home, country);
  op(kForeignIps, count_ip && !a.home, a.client_key);
  op(kHomeIps, a.home, a.client_key);
}

Verdict GeoDetector::evaluate(const DetectorContext& context,
                              const DetectorResults& results) const {
  if (results.sets.size() != 4) return {};
  const auto a = assess(context);
  if (!a.counted) return {};
  const auto foreign_countries = results.sets[0].count;
  const auto home_countries = results.sets[1].count;
  const auto foreign_ips = results.sets[2].count;
  const auto home_ips = results.sets[3].count;
  const auto& l = a.limits;

  std::string reason;
  if (a.country && !l.trusted_countries->empty() && !a.country_trusted) {
    reason = "country " + *a.country + " is not a trusted country";
  } else if (a.country && l.trusted_countries->empty() &&
             foreign_countries > static_cast<std::uint32_t>(l.countries)) {
    reason = fmt::format("{} foreign countries within {} s (limit {})", foreign_countries, ttl_s_,
                         l.countries);
  } else if (a.country && l.trusted_countries->empty() &&
             home_countries > static_cast<std::uint32_t>(l.home_countries)) {
    reason = fmt::format("{} home countries within {} s (limit {})", home_countries, ttl_s_,
                         l.home_countries);
  } else if (!l.trusted_networks->empty() && !a.client_trusted) {
    reason = "client address " + std::string(context.request.get(protocol::Attr::client_address)) +
             " is not in a trusted network";
  } else if (l.trusted_networks->empty() && foreign_ips > static_cast<std::uint32_t>(l.ips)) {
    reason = fmt::format("{} foreign client addresses within {} s (limit {})", foreign_ips, ttl_s_,
                         l.ips);
  } else if (l.trusted_networks->empty() && home_ips > static_cast<std::uint32_t>(l.home_ips)) {
    reason = fmt::format("{} home client addresses within {} s (limit {})", home_ips, ttl_s_,
                         l.home_ips);
  }
  if (reason.empty()) return {};
  SASLGUARD_COUNT(geo_fired_total);
  Verdict verdict;
  verdict.action = action_;
  verdict.detector = name();
  verdict.reason = std::move(reason);
  verdict.reply_text = reply_text_;
  verdict.mark = mark_;
  verdict.evidence = fmt::format(
      R"({{"client":"{}","country":"{}","home":{},"foreign_countries":{},"home_countries":{},)"
      R"("foreign_ips":{},"home_ips":{},"limits":{{"ips":{},"countries":{},"home_ips":{},)"
      R"("home_countries":{}}},"ttl_s":{}}})",
      a.client_key, a.country.value_or(""), a.home, foreign_countries, home_countries, foreign_ips,
      home_ips, l.ips, l.countries, l.home_ips, l.home_countries, ttl_s_);
  return verdict;
}

}  // namespace saslguard::engine
