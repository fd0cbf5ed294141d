// geo_custom_settings.hpp — geoip-policyd's custom settings file, read unchanged:
// {"data":[{"comment","sender","ips","countries","trusted_countries","trusted_ips",
// "home_countries":{"codes","ips","countries"}}]}. The first entry whose sender is the account
// (ignoring case) applies; zero or missing numbers keep the configured defaults.
#pragma once

#include <atomic>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <memory>
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
  std::vector<std::string> trusted_ips;  // as written, parallel to trusted_networks
  std::vector<std::string> home_codes;   // non-empty: replaces the home countries
  int home_ips = 0;
  int home_countries = 0;
};

class GeoCustomSettings {
 public:
  // Parses the JSON text; errors name the entry (index and sender) and the field.
  static Result<GeoCustomSettings> parse(std::string_view json, std::string_view source);
  static Result<GeoCustomSettings> load(const std::string& path);
  // One entry of "data"; `where` prefixes the error ("PATCH /modify: value").
  static Result<GeoCustomEntry> parseEntry(const boost::json::value& value, std::string where);
  static GeoCustomSettings fromEntries(std::vector<GeoCustomEntry> entries);

  // The "data" array in the file's format (what GET /custom-settings shows).
  boost::json::array toJson() const;
  static boost::json::object entryToJson(const GeoCustomEntry& entry);

  // The first entry for `account` (lower case), if any.
  const GeoCustomEntry* find(std::string_view account) const;
  const std::vector<GeoCustomEntry>& entries() const { return entries_; }

 private:
  std::vector<GeoCustomEntry> entries_;
};

// The custom settings in force, shared by the geo detector (read on every request) and the admin
// API (which changes them). A change is written to the file first (atomically: a temporary file
// renamed over it), so it survives a restart and a reload reads it back.
class GeoCustomSettingsSource {
 public:
  // `path` empty: no file configured (nothing loaded, and the API cannot change anything).
  GeoCustomSettingsSource(std::string path, std::shared_ptr<const GeoCustomSettings> loaded);
  // Null when no file is configured.
  std::shared_ptr<const GeoCustomSettings> current() const;
  Result<void> replace(GeoCustomSettings settings);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::atomic<std::shared_ptr<const GeoCustomSettings>> current_;
};

}  // namespace saslguard::engine
