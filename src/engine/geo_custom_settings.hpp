// geo_custom_settings.hpp — geoip-policyd's custom settings file, read unchanged:
// {"data":[{"comment","sender","ips","countries","trusted_countries","trusted_ips",
// "home_countries":{"codes","ips","countries"}}]}. The first entry whose sender is the account
// (ignoring case) applies; zero or missing numbers keep the configured defaults.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/network.hpp"
#include "common/result.hpp"

namespace saslguard::engine {

struct GeoCustomEntry {
  std::string comment;
  std::string sender;  // lower-cased
  int ips = 0;         // 0: the default
  int countries = 0;
  std::vector<std::string> trusted_countries;  // upper-cased
  std::vector<Network> trusted_networks;
  std::vector<std::string> home_codes;  // non-empty: replaces the home countries
  int home_ips = 0;
  int home_countries = 0;
};

class GeoCustomSettings {
 public:
  // Parses the JSON text; errors name the entry (index and sender) and the field.
  static Result<GeoCustomSettings> parse(std::string_view json, std::string_view source);
  static Result<GeoCustomSettings> load(const std::string& path);

  // The first entry for `account` (lower case), if any.
  const GeoCustomEntry* find(std::string_view account) const;
  const std::vector<GeoCustomEntry>& entries() const { return entries_; }

 private:
  std::vector<GeoCustomEntry> entries_;
};

}  // namespace saslguard::engine
