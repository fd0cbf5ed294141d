// geo_custom_settings.cpp — see geo_custom_settings.hpp. geoip-policyd decoded the file with Go's
// encoding/json into typed fields, so a wrong type was an error for the whole file; so here, with
// the entry and field named.
#include "engine/geo_custom_settings.hpp"

#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "common/files.hpp"
#include "common/strings.hpp"

namespace saslguard::engine {

namespace json = boost::json;

namespace {

struct EntryReader {
  const json::object& object;
  std::string where;  // "custom settings file.json: data[2] (sender x@y)"

  Result<std::string> text(std::string_view field) const {
    const auto* value = object.if_contains(field);
    if (value == nullptr || value->is_null()) return std::string();
    if (!value->is_string()) return fail(where + ": " + std::string(field) + " must be a string");
    return std::string(value->as_string());
  }
  static Result<int> number(const json::value* value, const std::string& what) {
    if (value == nullptr || value->is_null()) return 0;
    if (value->is_int64() && value->as_int64() >= 0 && value->as_int64() <= 100000000) {
      return static_cast<int>(value->as_int64());
    }
    if (value->is_uint64() && value->as_uint64() <= 100000000) {
      return static_cast<int>(value->as_uint64());
    }
    return fail(what + " must be a whole number from 0 to 100000000");
  }
  static Result<std::vector<std::string>> list(const json::value* value, const std::string& what) {
    std::vector<std::string> out;
    if (value == nullptr || value->is_null()) return out;
    if (!value->is_array()) return fail(what + " must be a list of strings");
    for (const auto& item : value->as_array()) {
      if (!item.is_string()) return fail(what + " must be a list of strings");
      out.emplace_back(item.as_string());
    }
    return out;
  }
};

Result<std::vector<std::string>> countryCodes(std::vector<std::string> codes,
                                              const std::string& what) {
  for (auto& code : codes) {
    code = toUpperAscii(trim(code));
    if (code.size() != 2 || !std::isalpha(static_cast<unsigned char>(code[0])) ||
        !std::isalpha(static_cast<unsigned char>(code[1]))) {
      return fail(what + ": '" + code + "' is not a two-letter country code");
    }
  }
  return codes;
}

}  // namespace

Result<GeoCustomSettings> GeoCustomSettings::parse(std::string_view text, std::string_view source) {
  boost::system::error_code ec;
  const auto document = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return fail(std::string(source) + ": not valid JSON: " + ec.message());
  if (!document.is_object() || !document.as_object().contains("data") ||
      !document.as_object().at("data").is_array()) {
    return fail(std::string(source) + ": expected {\"data\": [ ... ]}");
  }
  GeoCustomSettings settings;
  const auto& data = document.as_object().at("data").as_array();
  for (std::size_t i = 0; i < data.size(); ++i) {
    auto entry = parseEntry(data[i], std::string(source) + ": data[" + std::to_string(i) + "]");
    if (!entry) return tl::unexpected(entry.error());
    settings.entries_.push_back(std::move(*entry));
  }
  return settings;
}

Result<GeoCustomEntry> GeoCustomSettings::parseEntry(const boost::json::value& value,
                                                     std::string where) {
  if (!value.is_object()) return fail(where + " must be an object");
  const auto& object = value.as_object();
  if (const auto* sender = object.if_contains("sender"); sender && sender->is_string()) {
    where += " (sender " + std::string(sender->as_string()) + ")";
  }
  EntryReader reader{object, where};
  GeoCustomEntry entry;
  auto comment = reader.text("comment");
  if (!comment) return tl::unexpected(comment.error());
  entry.comment = std::move(*comment);
  auto sender = reader.text("sender");
  if (!sender) return tl::unexpected(sender.error());
  entry.sender = toLowerAscii(trim(*sender));
  if (entry.sender.empty()) return fail(where + ": sender is missing or empty");
  auto ips = EntryReader::number(object.if_contains("ips"), where + ": ips");
  if (!ips) return tl::unexpected(ips.error());
  entry.ips = *ips;
  auto countries = EntryReader::number(object.if_contains("countries"), where + ": countries");
  if (!countries) return tl::unexpected(countries.error());
  entry.countries = *countries;
  auto trusted =
      EntryReader::list(object.if_contains("trusted_countries"), where + ": trusted_countries");
  if (!trusted) return tl::unexpected(trusted.error());
  auto codes = countryCodes(std::move(*trusted), where + ": trusted_countries");
  if (!codes) return tl::unexpected(codes.error());
  entry.trusted_countries = std::move(*codes);
  auto trusted_ips = EntryReader::list(object.if_contains("trusted_ips"), where + ": trusted_ips");
  if (!trusted_ips) return tl::unexpected(trusted_ips.error());
  for (const auto& network : *trusted_ips) {
    auto parsed = parseNetwork(trim(network));
    if (!parsed) {
      return fail(where + ": trusted_ips: '" + network + "' is not an IP address or network");
    }
    entry.trusted_networks.push_back(*parsed);
    entry.trusted_ips.emplace_back(trim(network));
  }
  if (const auto* home = object.if_contains("home_countries"); home && !home->is_null()) {
    if (!home->is_object()) return fail(where + ": home_countries must be an object");
    const auto& home_object = home->as_object();
    auto home_codes =
        EntryReader::list(home_object.if_contains("codes"), where + ": home_countries.codes");
    if (!home_codes) return tl::unexpected(home_codes.error());
    auto checked = countryCodes(std::move(*home_codes), where + ": home_countries.codes");
    if (!checked) return tl::unexpected(checked.error());
    entry.home_codes = std::move(*checked);
    auto home_ips =
        EntryReader::number(home_object.if_contains("ips"), where + ": home_countries.ips");
    if (!home_ips) return tl::unexpected(home_ips.error());
    entry.home_ips = *home_ips;
    auto home_countries = EntryReader::number(home_object.if_contains("countries"),
                                              where + ": home_countries.countries");
    if (!home_countries) return tl::unexpected(home_countries.error());
    entry.home_countries = *home_countries;
  }
  return entry;
}

Result<GeoCustomSettings> GeoCustomSettings::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail("custom_settings_file: cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

GeoCustomSettings GeoCustomSettings::fromEntries(std::vector<GeoCustomEntry> entries) {
  GeoCustomSettings settings;
  settings.entries_ = std::move(entries);
  return settings;
}

boost::json::object GeoCustomSettings::entryToJson(const GeoCustomEntry& entry) {
  json::object out{{"comment", entry.comment},
                   {"sender", entry.sender},
                   {"ips", entry.ips},
                   {"countries", entry.countries}};
  json::array trusted_countries(entry.trusted_countries.begin(), entry.trusted_countries.end());
  out["trusted_countries"] = std::move(trusted_countries);
  json::array trusted_ips(entry.trusted_ips.begin(), entry.trusted_ips.end());
  out["trusted_ips"] = std::move(trusted_ips);
  if (entry.home_codes.empty()) {
    out["home_countries"] = nullptr;
  } else {
    json::array codes(entry.home_codes.begin(), entry.home_codes.end());
    out["home_countries"] = json::object{
        {"codes", std::move(codes)}, {"ips", entry.home_ips}, {"countries", entry.home_countries}};
  }
  return out;
}

boost::json::array GeoCustomSettings::toJson() const {
  json::array data;
  for (const auto& entry : entries_) data.push_back(entryToJson(entry));
  return data;
}

GeoCustomSettingsSource::GeoCustomSettingsSource(std::string path,
                                                 std::shared_ptr<const GeoCustomSettings> loaded)
    : path_(std::move(path)), current_(std::move(loaded)) {}

std::shared_ptr<const GeoCustomSettings> GeoCustomSettingsSource::current() const {
  return current_.load(std::memory_order_acquire);
}

Result<void> GeoCustomSettingsSource::replace(GeoCustomSettings settings) {
  if (path_.empty()) {
    return fail(
        "detectors.geo.custom_settings_file is not set: custom settings changed through the API "
        "are kept in that file");
  }
  std::string text = json::serialize(json::object{{"data", settings.toJson()}});
  text += "\n";
  if (auto written = writeFileAtomically(path_, text); !written) {
    return fail("custom_settings_file: " + written.error().message);
  }
  current_.store(std::make_shared<const GeoCustomSettings>(std::move(settings)),
                 std::memory_order_release);
  return {};
}

const GeoCustomEntry* GeoCustomSettings::find(std::string_view account) const {
  for (const auto& entry : entries_) {
    if (entry.sender == account) return &entry;
  }
  return nullptr;
}

}  // namespace saslguard::engine
