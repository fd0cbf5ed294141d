// admin_api_fuzz.cpp — libFuzzer target for every admin API route that reads a request body:
// the first byte picks the route (and the account of a native route), the rest is the JSON body,
// dispatched in process through the daemon's router against an embedded store in a temp dir.
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "admin/api.hpp"
#include "engine/decision.hpp"
#include "engine/detectors/geo.hpp"
#include "engine/geo_custom_settings.hpp"
#include "engine/pipeline.hpp"
#include "enrich/geoip.hpp"
#include "store/embedded_store.hpp"

namespace {

using namespace saslguard;
namespace json = boost::json;

// geoip-policyd README's default custom.json: what the settings go back to when they grow.
constexpr std::string_view kCustomSettings =
    R"({"data":[{"sender":"christian@roessner.email","ips":3,"countries":1},)"
    R"({"sender":"test1@example.com","countries":1},{"sender":"test2@example.com","ips":20}]})";
constexpr std::size_t kMaxCustomEntries = 64;

// Countries by address prefix, standing in for the MaxMind DB.
class TableGeoDatabase final : public enrich::GeoIpDatabase {
 public:
  std::optional<std::string> country(std::string_view address) const override {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 5> kTable{
        {{"1.", "AU"}, {"81.1.", "DE"}, {"81.2.", "FR"}, {"81.3.", "IT"}, {"2001:db8:", "JP"}}};
    for (const auto& [prefix, code] : kTable) {
      if (address.starts_with(prefix)) return std::string(code);
    }
    return std::nullopt;
  }
  Result<bool> reloadIfChanged() override { return false; }
  std::string description() const override { return "fuzz table"; }
};

enum class Body { kGeoip, kOptional, kDovecotReport };  // what the route does with its body

struct Route {
  const char* method;
  const char* path;     // "{}" is replaced by an account
  const char* command;  // /dovecotpolicy's ?command=, or null
  Body body;
};

constexpr std::array<Route, 10> kRoutes{{
    {"POST", "/remove", nullptr, Body::kGeoip},
    {"POST", "/query", nullptr, Body::kGeoip},
    {"PUT", "/update", nullptr, Body::kGeoip},
    {"PATCH", "/modify", nullptr, Body::kGeoip},
    {"DELETE", "/remove", nullptr, Body::kGeoip},
    {"POST", "/dovecotpolicy", "allow", Body::kGeoip},
    {"POST", "/dovecotpolicy", "report", Body::kDovecotReport},
    {"POST", "/api/v1/unblock/{}", nullptr, Body::kOptional},
    {"POST", "/api/v1/block/{}", nullptr, Body::kOptional},
    {"POST", "/api/v1/accounts/{}/held/release", nullptr, Body::kOptional},
}};
// The purge route shares release's handler; it is picked with the second half of the accounts.
constexpr std::array<const char*, 3> kAccounts{"user@example.com", "Test1%40Example.COM", "bob"};

struct Harness {
  std::filesystem::path dir;
  boost::asio::io_context io;
  std::unique_ptr<store::EmbeddedStore> store;
  engine::RecentDecisions recent{100};
  engine::PipelinePtr pipeline;
  std::shared_ptr<engine::GeoCustomSettingsSource> custom;
  engine::GeoCustomSettings initial;
  std::optional<admin::Router> router;

  Harness() {
    spdlog::set_level(spdlog::level::off);
    // Under TMPDIR (fuzz/run points it at /dev/shm): every block and unblock commits with
    // fdatasync, which costs nothing in memory and a disk flush elsewhere.
    const char* base = std::getenv("TMPDIR");
    std::string name =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/admin_api_fuzz.XXXXXX";
    if (::mkdtemp(name.data()) == nullptr) std::abort();
    dir = name;
    std::ofstream(dir / "custom.json") << kCustomSettings;

    store::EmbeddedStoreOptions options;
    options.dir = dir / "state";
    options.start_flusher = false;
    options.max_accounts = 1000;  // /dovecotpolicy counts any login it is sent
    options.map_size_mb = 64;
    auto opened = store::EmbeddedStore::open(options);
    if (!opened) std::abort();
    store = std::move(*opened);

    auto settings = std::make_shared<config::Settings>();
    settings->postfix.command_directory = (dir / "no-postfix").string();  // spawning fails
    settings->postfix.config_directory = dir.string();
    config::GeoSettings geo;
    geo.enabled = true;
    geo.custom_settings_file = (dir / "custom.json").string();
    auto detector = engine::GeoDetector::create(geo, std::make_shared<TableGeoDatabase>());
    if (!detector) std::abort();
    custom = dynamic_cast<const engine::GeoDetector&>(**detector).customSettings();
    initial = *custom->current();
    std::vector<engine::ConfiguredDetector> detectors;
    detectors.push_back({std::move(*detector), /*shadow=*/true});  // counts, never marks
    auto built =
        engine::Pipeline::buildWith(std::move(settings), *store, recent, std::move(detectors));
    if (!built) std::abort();
    pipeline = *built;

    auto context = std::make_shared<admin::ApiContext>();
    context->context = &io;
    context->store = store.get();
    context->recent = &recent;
    context->pipeline = [this] { return pipeline; };
    context->reload = [] { return Result<void>{}; };
    context->policy_ready = [] { return true; };
    config::AdminSettings admin_settings;
    admin_settings.geoip_policyd_endpoints = true;
    router.emplace(admin::makeApiRouter(context, admin_settings));
  }

  admin::Response dispatch(admin::Request& request) {
    std::optional<admin::Response> response;
    boost::asio::co_spawn(io, router->dispatchAsync(request),
                          [&](std::exception_ptr error, admin::Response answer) {
                            if (error) std::rethrow_exception(error);
                            response = std::move(answer);
                          });
    // The hold-queue routes finish on a thread pool of their own: wait for the answer to come
    // back (a resolver may keep the loop busy, so one handler at a time, not until idle).
    while (!response) {
      if (io.stopped()) io.restart();
      io.run_one_for(std::chrono::milliseconds(20));
    }
    return std::move(*response);
  }

  // PATCH /modify appends an entry per new sender: start over before the file grows unbounded.
  void bound() {
    auto current = custom->current();
    if (current && current->entries().size() > kMaxCustomEntries) {
      if (!custom->replace(initial)) std::abort();
    }
  }
};

Harness& harness() {
  static Harness* instance = [] {
    auto* created = new Harness();  // lives as long as the process; its files do not
    std::atexit([] { std::filesystem::remove_all(harness().dir); });
    return created;
  }();
  return *instance;
}

void check(bool condition, const char* what, const admin::Request& request,
           const admin::Response& response) {
  if (condition) return;
  std::fprintf(stderr, "admin_api_fuzz: %s: %s %s -> %u %s\n", what, request.method.c_str(),
               request.path.c_str(), response.status, response.body.c_str());
  std::abort();
}

bool isString(const json::object& object, std::string_view name) {
  const auto* value = object.if_contains(name);
  return value != nullptr && value->is_string();
}

bool notBool(const json::object& object, std::string_view name) {
  const auto* value = object.if_contains(name);
  return value != nullptr && !value->is_bool();
}

// For a body that is a JSON object: the status the route must answer when the object has the
// wrong shape for it, or 0 when the shape is fine (or the answer depends on more than the shape).
unsigned shapeStatus(std::size_t route, const json::object& body) {
  const auto key = isString(body, "key") ? std::string(body.at("key").as_string()) : "";
  const auto* value = body.if_contains("value");
  switch (route) {
    case 0:  // POST /remove
    case 4:  // DELETE /remove
      return key != "sender" || !isString(body, "value") ? 400 : 0;
    case 1:  // POST /query
      if (key != "client" || value == nullptr || !value->is_object()) return 400;
      return isString(value->as_object(), "address") && isString(value->as_object(), "sender")
                 ? 0
                 : 400;
    case 2:  // PUT /update
      return body.contains("data") && body.at("data").is_array() ? 0 : 400;
    case 3:  // PATCH /modify: another key is ignored, as geoip-policyd did
      if (key != "sender") return 200;
      return value == nullptr || !value->is_object() ? 400 : 0;
    case 5:  // POST /dovecotpolicy?command=allow
      return isString(body, "login") && isString(body, "remote") ? 0 : 400;
    case 7:  // unblock
      return notBool(body, "forget_geo") ? 400 : 0;
    case 8: {  // block
      if (!isString(body, "action")) return 0;
      std::string action(body.at("action").as_string());
      for (auto& c : action) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
      return action == "REJECT" || action == "DEFER" || action == "HOLD" ? 0 : 400;
    }
    case 9:  // held/release, held/purge
      return notBool(body, "dry_run") ? 400 : 0;
    default:
      return 0;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  harness();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  auto& h = harness();
  const auto index = data[0] % kRoutes.size();
  const auto& route = kRoutes[index];
  const auto choice = (data[0] / kRoutes.size()) % (2 * kAccounts.size());
  std::string path = route.path;
  if (const auto at = path.find("{}"); at != std::string::npos) {
    path.replace(at, 2, kAccounts[choice % kAccounts.size()]);
    if (choice >= kAccounts.size() && path.ends_with("/release")) {
      path.replace(path.size() - 7, 7, "purge");
    }
  }

  admin::Request request;
  request.method = route.method;
  request.path = path;
  if (route.command != nullptr) request.query["command"] = route.command;
  request.content_type = "application/json";
  request.body.assign(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto response = h.dispatch(request);
  h.bound();
  static const bool print = std::getenv("ADMIN_API_FUZZ_PRINT") != nullptr;  // replaying a file
  if (print) {
    std::fprintf(stderr, "%s %s -> %u %s\n", request.method.c_str(), request.path.c_str(),
                 response.status, response.body.c_str());
  }

  check(response.status >= 200 && response.status <= 599, "status out of range", request, response);
  if (response.content_type == "application/json") {
    boost::system::error_code ec;
    json::parse(response.body, ec);
    check(!ec, "answer is not JSON", request, response);
  }
  boost::system::error_code ec;
  const auto body = json::parse(request.body, ec);
  const bool empty = request.body.empty();
  switch (route.body) {
    case Body::kGeoip:  // a JSON object, or 400
      check(!(ec || !body.is_object()) || response.status == 400, "not an object but not 400",
            request, response);
      break;
    case Body::kOptional:  // absent or a JSON object, or 400
      check(empty || !(ec || !body.is_object()) || response.status == 400,
            "not an object but not 400", request, response);
      break;
    case Body::kDovecotReport:  // any JSON at all: "Nothing to report"
      check((ec || empty) ? response.status == 400 : response.status == 200,
            "report answered wrongly", request, response);
      break;
  }
  if (!ec && body.is_object()) {
    if (const auto expected = shapeStatus(index, body.as_object()); expected != 0) {
      check(response.status == expected, "wrong status for the body's shape", request, response);
    }
  }
  return 0;
}
