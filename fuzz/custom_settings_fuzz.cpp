// custom_settings_fuzz.cpp — libFuzzer target: geoip-policyd's custom settings JSON, as the file
// and as the admin API's PUT /update and PATCH /modify bodies. Whatever parses must serialise
// and parse again to the same entries (what the API writes back to the file).
#include <boost/json.hpp>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "engine/geo_custom_settings.hpp"

using saslguard::engine::GeoCustomSettings;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = GeoCustomSettings::parse(text, "fuzz");
  if (parsed) {
    const auto written = boost::json::serialize(boost::json::object{{"data", parsed->toJson()}});
    auto again = GeoCustomSettings::parse(written, "fuzz (written)");
    if (!again || again->entries().size() != parsed->entries().size()) std::abort();
    for (std::size_t i = 0; i < parsed->entries().size(); ++i) {
      const auto& a = parsed->entries()[i];
      const auto& b = again->entries()[i];
      if (a.sender != b.sender || a.ips != b.ips || a.countries != b.countries ||
          a.trusted_countries != b.trusted_countries || a.trusted_ips != b.trusted_ips ||
          a.home_codes != b.home_codes) {
        std::abort();
      }
    }
  }
  // One entry, as PATCH /modify's "value".
  boost::system::error_code ec;
  const auto value = boost::json::parse(boost::json::string_view(text.data(), text.size()), ec);
  if (!ec) (void)GeoCustomSettings::parseEntry(value, "PATCH /modify: value");
  return 0;
}
