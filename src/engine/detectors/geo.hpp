// geo.hpp — the geography detector (geoip-policyd semantics): each account's distinct client
// IPs and GeoIP countries within ttl_s, home countries counted apart with their own limits,
// trusted countries and networks as allow-lists, per-account limits from geoip-policyd's custom
// settings file; more than a limit fires. State lives in the Store (one set per dimension).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/network.hpp"
#include "engine/detector.hpp"
#include "engine/geo_custom_settings.hpp"
#include "enrich/geoip.hpp"

namespace saslguard::engine {

class GeoDetector final : public Detector {
 public:
  // Opens the database and reads custom_settings_file now: a reload (new pipeline) reads them
  // again. With missing_database = "disable" an unreadable database gives an inert detector.
  static Result<DetectorPtr> create(const config::GeoSettings& settings);
  // The same with a database already open (tests, benchmarks).
  static Result<DetectorPtr> create(const config::GeoSettings& settings,
                                    std::shared_ptr<enrich::GeoIpDatabase> database);
  std::string_view name() const override { return "geo"; }
  void plan(const DetectorContext& context, store::Batch& batch) const override;
  Verdict evaluate(const DetectorContext& context, const DetectorResults& results) const override;

  // "2001:db8:1:2::/64" for an IPv6 address at prefix 64; the address itself for IPv4.
  static std::string clientKey(const boost::asio::ip::address& address, int ipv6_prefix);

  // Set names in the store (what an operator's unblock forgets: every set named "geo:...").
  static constexpr std::string_view kSetPrefix = "geo:";
  static constexpr std::string_view kForeignCountries = "geo:countries";
  static constexpr std::string_view kHomeCountries = "geo:home_countries";
  static constexpr std::string_view kForeignIps = "geo:ips";
  static constexpr std::string_view kHomeIps = "geo:home_ips";

  // What the detector makes of a request, for the admin API's geoip-policyd /query answer.
  struct Description {
    bool counted = false;  // false: not counted (ignored network, no address, stage)
    std::string client_key;
    std::string country;  // "" when unknown
    bool home = false;
    bool trusted = false;  // the address or country is on the account's trusted lists
  };
  Description describe(const DetectorContext& context) const;
  // The custom settings in force (the API reads and changes them through this).
  const std::shared_ptr<GeoCustomSettingsSource>& customSettings() const { return custom_; }

 private:
  GeoDetector() = default;

  // The limits and lists in force for one account (defaults, or its custom entry).
  struct Limits {
    int ips, countries, home_ips, home_countries;
    const std::vector<std::string>* home_codes;
    const std::vector<std::string>* trusted_countries;
    const std::vector<Network>* trusted_networks;
  };
  // What this request is to the detector; plan() and evaluate() decide it the same way.
  struct Assessment {
    bool counted = false;  // false: not our request (stage, ignored network, no address)
    std::string client_key;
    std::optional<std::string> country;
    bool home = false;
    bool client_trusted = false;   // in trusted networks (when there are some)
    bool country_trusted = false;  // in trusted countries (when there are some)
    Limits limits{};
    std::shared_ptr<const GeoCustomSettings> custom;  // keeps the limits' lists alive
  };
  Assessment assess(const DetectorContext& context) const;
  void reloadDatabaseIfDue(TimePoint now) const;

  std::shared_ptr<enrich::GeoIpDatabase> database_;  // null: inert (database missing)
  Action action_ = Action::Reject;
  std::string reply_text_;
  bool mark_ = false;
  std::uint32_t ttl_s_ = 3600;
  int ipv6_prefix_ = 64;
  int database_check_interval_s_ = 60;
  Limits defaults_{};
  std::vector<std::string> home_codes_;
  std::vector<std::string> trusted_countries_;
  std::vector<Network> trusted_networks_;
  NetworkList ignore_networks_;
  std::shared_ptr<GeoCustomSettingsSource> custom_;
  mutable std::atomic<std::int64_t> next_database_check_s_{0};
};

}  // namespace saslguard::engine
